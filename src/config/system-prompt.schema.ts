import { readFileSync } from 'node:fs';
import * as z from 'zod';

/** The agent's system prompt, as the rest of the service sees it. */
export interface SystemPrompt {
  /** Sent as the first (`system`) message of every model call. Never logged. */
  readonly text: string;
  /** Where it came from, for the start-up log: `AGENT_SYSTEM_PROMPT` or `AGENT_SYSTEM_PROMPT_FILE (<path>)`. */
  readonly source: string;
}

/** A prompt longer than this is almost certainly the wrong file (a log, a binary). */
export const MAX_SYSTEM_PROMPT_CHARS = 100_000;

const tooLong = `must be at most ${MAX_SYSTEM_PROMPT_CHARS} characters`;

/** `AGENT_SYSTEM_PROMPT`: the prompt itself, kept exactly as given (no trimming: it is prose). */
export const systemPromptVariable = z
  .string()
  .max(MAX_SYSTEM_PROMPT_CHARS, tooLong)
  .refine((text) => text.trim() !== '', 'must not be blank')
  .transform((text): SystemPrompt => ({ text, source: 'AGENT_SYSTEM_PROMPT' }))
  .optional();

/**
 * `AGENT_SYSTEM_PROMPT_FILE`: a UTF-8 file read once, here, while the configuration is validated,
 * so that a missing or unreadable file fails the start with the other configuration problems
 * instead of failing the first run.
 */
export const systemPromptFileVariable = z
  .string()
  .trim()
  .min(1)
  .transform((path, context): SystemPrompt => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      context.addIssue({ code: 'custom', message: `cannot read the file (${code})` });
      return z.NEVER;
    }
    if (text.trim() === '') context.addIssue({ code: 'custom', message: 'the file is empty' });
    if (text.length > MAX_SYSTEM_PROMPT_CHARS) context.addIssue({ code: 'custom', message: `the file ${tooLong}` });
    return { text, source: `AGENT_SYSTEM_PROMPT_FILE (${path})` };
  })
  .optional();
