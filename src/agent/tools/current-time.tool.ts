import * as z from 'zod';
import { type Tool, toolSpec } from './tool.js';

export interface CurrentTimeArgs {
  readonly timezone?: string;
}

export interface CurrentTimeResult {
  /** The instant in UTC, ISO 8601. */
  readonly iso: string;
  /** The zone `local` is written in, as the caller gave it; `UTC` by default. */
  readonly timezone: string;
  /** The instant as a human reads it in that zone, e.g. "Friday, 15 March 2024 at 21:30:00 GMT+9". */
  readonly local: string;
}

const DEFAULT_TIME_ZONE = 'UTC';

/** True when this runtime's ICU knows `timeZone`; `Intl` throws a RangeError for names it does not. */
function isKnownTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat(undefined, { timeZone });
    return true;
  } catch (error) {
    if (error instanceof RangeError) return false;
    throw error;
  }
}

/** Builds the tool around a clock, so tests can pin the time. */
export function createCurrentTimeTool(now: () => Date = () => new Date()): Tool<CurrentTimeArgs, CurrentTimeResult> {
  const args = z
    .object({
      timezone: z
        .string()
        .min(1)
        .max(64)
        .refine(isKnownTimeZone, { message: 'unknown time zone' })
        .describe('An IANA time zone name such as "Europe/Paris" or "Asia/Tokyo". Defaults to "UTC".')
        .optional(),
    })
    .strict();
  return {
    spec: toolSpec(
      'current_time',
      'Returns the current date and time: the UTC instant in ISO 8601 and a human-readable form in the ' +
        'requested time zone. Use it whenever the answer depends on today’s date or the time of day.',
      args,
    ),
    args,
    async execute({ timezone = DEFAULT_TIME_ZONE }, signal) {
      signal.throwIfAborted();
      const instant = now();
      const local = new Intl.DateTimeFormat('en-GB', { dateStyle: 'full', timeStyle: 'long', timeZone: timezone });
      return { iso: instant.toISOString(), timezone, local: local.format(instant) };
    },
  };
}

export const currentTimeTool = createCurrentTimeTool();
