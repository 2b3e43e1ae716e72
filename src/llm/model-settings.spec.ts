import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../config/load-config.js';
import { describeModelSettings } from './model-settings.js';

const SECRET_KEY = 'sk-live-0123456789abcdef';
const PROMPT = 'You are the support agent of ACME. Internal discount code: ZEBRA-42.';

describe('describeModelSettings', () => {
  it('names provider, model, base URL, temperature, max tokens and the prompt length and source, never the key or the prompt', () => {
    const { config } = loadConfig({
      LLM_PROVIDER: 'openai',
      LLM_MODEL: 'qwen2.5-7b-instruct',
      LLM_BASE_URL: 'http://vllm.internal:8000/v1',
      LLM_API_KEY: SECRET_KEY,
      LLM_TEMPERATURE: '0.3',
      LLM_MAX_TOKENS: '1024',
      AGENT_SYSTEM_PROMPT: PROMPT,
    });

    const line = describeModelSettings(config);

    expect(line).toBe(
      `model: provider openai, model qwen2.5-7b-instruct, base URL http://vllm.internal:8000/v1, temperature 0.3, max tokens 1024, API key set, system prompt: ${PROMPT.length} characters from AGENT_SYSTEM_PROMPT`,
    );
    expect(line).not.toContain(SECRET_KEY);
    expect(line).not.toContain('ZEBRA');
  });

  it('says when the server chooses temperature and max tokens, and when no key (no Authorization header) and no prompt are set', () => {
    const { config } = loadConfig({
      LLM_PROVIDER: 'openai',
      LLM_MODEL: 'llama3.2',
      LLM_BASE_URL: 'http://127.0.0.1:11434/v1',
    });

    expect(describeModelSettings(config)).toBe(
      'model: provider openai, model llama3.2, base URL http://127.0.0.1:11434/v1, temperature server default, max tokens server default, API key none (no Authorization header), system prompt: none',
    );
  });

  it('hides credentials written into the base URL', () => {
    const { config } = loadConfig({
      LLM_PROVIDER: 'openai',
      LLM_MODEL: 'm',
      LLM_BASE_URL: `https://user:${SECRET_KEY}@llm.example.com/v1`,
    });

    const line = describeModelSettings(config);

    expect(line).toContain('base URL https://llm.example.com/v1');
    expect(line).not.toContain(SECRET_KEY);
  });

  it('says that temperature and max tokens do not apply to the embedded model', () => {
    const { config } = loadConfig({ AGENT_SYSTEM_PROMPT: PROMPT });

    expect(describeModelSettings(config)).toBe(
      `model: provider local (the embedded model; LLM_TEMPERATURE and LLM_MAX_TOKENS do not apply), system prompt: ${PROMPT.length} characters from AGENT_SYSTEM_PROMPT`,
    );
  });
});
