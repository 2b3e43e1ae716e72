/** DI token: the tools the agent offers the model (`Tool[]`). Tests override it to add their own. */
export const AGENT_TOOLS = Symbol('agent-gateway:agent-tools');
