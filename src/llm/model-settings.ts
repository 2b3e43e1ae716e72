import type { AppConfig } from '../config/app-config.js';

/**
 * The start-up log line that says which model the agent talks to and how: what an operator checks
 * first when answers look wrong. Never the API key (only whether one is set) and never the system
 * prompt (only its length and where it came from): both may be secret, and logs travel far.
 */
export function describeModelSettings(config: Pick<AppConfig, 'llm' | 'agent'>): string {
  const { llm, agent } = config;
  const prompt =
    agent.systemPrompt === undefined
      ? 'system prompt: none'
      : `system prompt: ${agent.systemPrompt.text.length} characters from ${agent.systemPrompt.source}`;
  if (llm.provider === 'local') {
    return `model: provider local (the embedded model; LLM_TEMPERATURE and LLM_MAX_TOKENS do not apply), ${prompt}`;
  }
  const { model, baseUrl, temperature, maxTokens, apiKey } = llm.openai;
  return [
    `model: provider openai, model ${model}, base URL ${safeUrl(baseUrl)}`,
    `temperature ${temperature ?? 'server default'}`,
    `max tokens ${maxTokens ?? 'server default'}`,
    `API key ${apiKey === undefined ? 'none (no Authorization header)' : 'set'}`,
    prompt,
  ].join(', ');
}

/** The URL without credentials a careless `https://user:key@host/v1` would carry. */
function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url;
  }
}
