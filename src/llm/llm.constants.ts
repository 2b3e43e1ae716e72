/** DI token: the {@link LlmProvider} in use, chosen by `LLM_PROVIDER`. Tests override it. */
export const LLM_PROVIDER = Symbol('agent-gateway:llm-provider');
