/**
 * The smoke command's arguments, read once: `--url` (required), a token (`--token`, or `--user`
 * signed with this environment's HS256 secret), thresholds, `--timeout`, `--json`. Everything
 * wrong is reported together, as the server's configuration is.
 */

/** Each step's limit, ms. Defaults from the incident's success metrics: a connection under 2 s. */
export interface SmokeThresholds {
  /** Start of the connection → the upgrade answered (the socket open). */
  readonly connectMs: number;
  /** Start of the connection → `connection_established`. */
  readonly establishedMs: number;
  /** `agent_request` sent → the first `agent_message_delta`. */
  readonly firstDeltaMs: number;
  /** `agent_request` sent → `agent_completed`. */
  readonly completedMs: number;
}

export const DEFAULT_THRESHOLDS: SmokeThresholds = {
  connectMs: 2_000,
  establishedMs: 2_000,
  firstDeltaMs: 10_000,
  completedMs: 60_000,
};
export const DEFAULT_TIMEOUT_MS = 90_000;
/** Arithmetic: the embedded model answers it with the `calculator` tool, and real models usually do. */
export const DEFAULT_MESSAGE = 'What is 6 * 7? Use the calculator tool.';

export type TokenSource = { readonly token: string } | { readonly user: string };

export interface SmokeOptions {
  /** The instance's or the fleet's base URL (http or https); the WebSocket is `<origin>/ws`. */
  readonly url: URL;
  readonly auth: TokenSource;
  readonly thresholds: SmokeThresholds;
  /** The whole check, every step included. */
  readonly timeoutMs: number;
  readonly message: string;
  readonly json: boolean;
}

export const SMOKE_USAGE = `usage: npm run --silent smoke -- --url <http(s)://host[:port]> (--token <jwt> | --user <id>) [options]
       node dist/smoke/smoke.command.js --url … (in the image: no build, no npm)

Checks a deployed instance (or a fleet behind one address) as a client would: GET /health/live and
/health/ready, a WebSocket to /ws, connection_established, one agent turn to agent_completed
(the default message asks for the calculator tool), the thread in thread_list, a clean close.
Exit 0 when every step passes; 1 naming the failing step and what was received; 2 on bad usage.

  --url URL               base URL of the service (required)
  --token JWT             the token to connect with (or SMOKE_TOKEN)
  --user ID               sign a token for ID with JWT_SECRET (HS256; JWT_ISSUER, JWT_AUDIENCE and
                          AUTH_USER_CLAIM as the server reads them; unset JWT_SECRET: the built-in
                          development secret, which only a development server accepts)
  --message TEXT          the agent turn's message (default: "${DEFAULT_MESSAGE}")
  --max-connect-ms N      the upgrade answered within N ms (default ${DEFAULT_THRESHOLDS.connectMs})
  --max-established-ms N  connection_established within N ms of connecting (default ${DEFAULT_THRESHOLDS.establishedMs})
  --max-first-delta-ms N  the first agent_message_delta within N ms of the request (default ${DEFAULT_THRESHOLDS.firstDeltaMs})
  --max-completed-ms N    agent_completed within N ms of the request (default ${DEFAULT_THRESHOLDS.completedMs})
  --timeout N             the whole check within N ms (default ${DEFAULT_TIMEOUT_MS}); also 30s, 2m
  --json                  one JSON report on stdout instead of lines
  -h, --help              this text
`;

const VALUE_FLAGS = new Set([
  '--url',
  '--token',
  '--user',
  '--message',
  '--max-connect-ms',
  '--max-established-ms',
  '--max-first-delta-ms',
  '--max-completed-ms',
  '--timeout',
]);

/** `1500`, `1500ms`, `30s`, `2m` → ms; anything else (0 and negatives included) → undefined. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/u.exec(text.trim());
  if (match === null) return undefined;
  const value = Number(match[1]) * (match[2] === 's' ? 1_000 : match[2] === 'm' ? 60_000 : 1);
  return Number.isFinite(value) && value >= 1 ? Math.round(value) : undefined;
}

export type ParsedArguments =
  | { readonly kind: 'help' }
  | { readonly kind: 'invalid'; readonly problems: readonly string[] }
  | { readonly kind: 'options'; readonly options: SmokeOptions };

/** `--flag value` and `--flag=value`; `env` supplies `SMOKE_TOKEN`. */
export function parseSmokeArguments(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParsedArguments {
  const values = new Map<string, string>();
  const problems: string[] = [];
  let json = false;
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index] ?? '';
    if (argument === '--help' || argument === '-h') return { kind: 'help' };
    if (argument === '--json') {
      json = true;
      continue;
    }
    const equals = argument.indexOf('=');
    const flag = equals === -1 ? argument : argument.slice(0, equals);
    if (!VALUE_FLAGS.has(flag)) {
      problems.push(`unknown argument ${JSON.stringify(argument)}`);
      continue;
    }
    const value = equals === -1 ? argv[(index += 1)] : argument.slice(equals + 1);
    if (value === undefined || (equals === -1 && value.startsWith('--'))) {
      problems.push(`${flag} needs a value`);
      if (value !== undefined) index -= 1;
      continue;
    }
    if (values.has(flag)) problems.push(`${flag} given twice`);
    values.set(flag, value);
  }

  let url: URL | undefined;
  const rawUrl = values.get('--url');
  if (rawUrl === undefined) problems.push('--url is required');
  else {
    try {
      url = new URL(rawUrl);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        problems.push(`--url: http:// or https:// (got ${url.protocol})`);
      }
    } catch {
      problems.push(`--url: not a URL (${JSON.stringify(rawUrl)})`);
    }
  }

  const user = values.get('--user');
  // SMOKE_TOKEN (a Job's secret, say) only where the command line names no identity.
  const token = values.get('--token') ?? (user !== undefined || env.SMOKE_TOKEN === '' ? undefined : env.SMOKE_TOKEN);
  let auth: TokenSource | undefined;
  if (token !== undefined && user !== undefined) problems.push('--token and --user: give one');
  else if (token !== undefined) auth = { token };
  else if (user !== undefined) {
    if (user === '') problems.push('--user: empty');
    else auth = { user };
  } else problems.push('--token (or SMOKE_TOKEN) or --user is required');

  const duration = (flag: string, fallback: number): number => {
    const text = values.get(flag);
    if (text === undefined) return fallback;
    const parsed = parseDuration(text);
    if (parsed === undefined) problems.push(`${flag}: a duration of at least 1 ms (got ${JSON.stringify(text)})`);
    return parsed ?? fallback;
  };
  const thresholds: SmokeThresholds = {
    connectMs: duration('--max-connect-ms', DEFAULT_THRESHOLDS.connectMs),
    establishedMs: duration('--max-established-ms', DEFAULT_THRESHOLDS.establishedMs),
    firstDeltaMs: duration('--max-first-delta-ms', DEFAULT_THRESHOLDS.firstDeltaMs),
    completedMs: duration('--max-completed-ms', DEFAULT_THRESHOLDS.completedMs),
  };
  const timeoutMs = duration('--timeout', DEFAULT_TIMEOUT_MS);
  const message = values.get('--message') ?? DEFAULT_MESSAGE;
  if (message.trim() === '') problems.push('--message: empty');

  if (problems.length > 0 || url === undefined || auth === undefined) return { kind: 'invalid', problems };
  return { kind: 'options', options: { url, auth, thresholds, timeoutMs, message, json } };
}
