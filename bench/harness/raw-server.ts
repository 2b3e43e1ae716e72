/**
 * The baseline of the side-by-side benchmark: the smallest `ws` server that does the gateway's job
 * on the wire, and nothing else. Same port handling (`PORT`, `HOST`), `perMessageDeflate: false`,
 * the same payload limit, the same JSON frames `{"event","data"}`, the same JWT from `?token=` (or
 * `Authorization: Bearer`) verified with node:crypto (`exp` and `sub` required; `iss` and `aud`
 * when `JWT_ISSUER` and `JWT_AUDIENCE` are set): HS256 with `JWT_SECRET`, and RS256, ES256 and
 * EdDSA against the keys of `RAW_JWKS` (a JWKS as JSON, imported once at start and looked up by
 * the header's `kid`, as the gateway does with the keys of `AUTH_JWKS_URL`), the same
 * `connection_established` fields, `ping` → `pong {requestId, serverTime}`, `stream`: N frames
 * shaped like `agent_message_delta`, sent in one loop, then `stream_done`, and `agent_request`:
 * what the embedded model's echo run looks like on the wire (`agent_started`, `agent_thinking`,
 * one `agent_message_delta` per word of the reply, `agent_completed`), with no storage at all.
 *
 * With `RAW_WARMUP_MS` > 0 it also does the readiness gate's job by hand: for that long after
 * `listen`, `/health/ready` answers 503 and authenticated connections are held (their frames
 * queued); when the timer fires they are all established in one loop, and one still held after
 * `RAW_READY_WAIT_MS` gets an `error` `SERVICE_NOT_READY` frame and close 1013. The flip is logged
 * as a JSON line `{"message":"ready","timestamp":…}` just before that loop, and `released` after it.
 *
 * Self-contained on purpose (only `node:*` and `ws`): `bench/side-by-side.ts` transpiles it to plain
 * JavaScript and runs it with `node`, with no loader in the process.
 */
import {
  createHmac,
  createPublicKey,
  type JsonWebKey,
  type KeyObject,
  randomUUID,
  timingSafeEqual,
  verify as verifySignature,
} from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';

const PROTOCOL_VERSION = 1;
const HEARTBEAT_MS = 25_000;
/** The gateway's `WS_MAX_PAYLOAD_BYTES` default. */
const MAX_PAYLOAD_BYTES = 262_144;
const MAX_TOKEN_LENGTH = 8 * 1024;
const MAX_REQUEST_ID_LENGTH = 128;

const secret = Buffer.from(process.env.JWT_SECRET ?? '', 'utf8');
const issuer = process.env.JWT_ISSUER;
const audience = process.env.JWT_AUDIENCE;

/** How each asymmetric algorithm's signature is checked (JWS, RFC 7518 3.3, 3.4; RFC 8037 3.1). */
const SIGNATURES: Record<string, (data: Buffer, key: KeyObject, signature: Buffer) => boolean> = {
  RS256: (data, key, signature) => verifySignature('sha256', data, key, signature),
  // A JWS carries r ‖ s (64 bytes), not the DER that node:crypto expects by default.
  ES256: (data, key, signature) => verifySignature('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature),
  EdDSA: (data, key, signature) => verifySignature(null, data, key, signature),
};

type Jwk = JsonWebKey & { kid?: string; use?: string; alg?: string };

/** The JWS algorithm of a JWK without `alg`, from its key type. */
function algorithmOf(jwk: Jwk): string | undefined {
  if (jwk.alg !== undefined) return jwk.alg;
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  return undefined;
}

/** The signing keys of a JWKS by `kid`, imported once (encryption keys and other algorithms skipped). */
function importJwks(json: string): Map<string, { alg: string; key: KeyObject }> {
  const keys = new Map<string, { alg: string; key: KeyObject }>();
  for (const jwk of (JSON.parse(json) as { keys: Jwk[] }).keys) {
    const alg = algorithmOf(jwk);
    if (jwk.kid === undefined || (jwk.use !== undefined && jwk.use !== 'sig')) continue;
    if (alg === undefined || SIGNATURES[alg] === undefined) continue;
    keys.set(jwk.kid, { alg, key: createPublicKey({ key: jwk, format: 'jwk' }) });
  }
  return keys;
}

const jwks = importJwks(process.env.RAW_JWKS ?? '{"keys":[]}');
if (secret.length === 0 && jwks.size === 0) throw new Error('raw-server: JWT_SECRET or RAW_JWKS is required');
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '0.0.0.0';
const warmupMs = Number(process.env.RAW_WARMUP_MS ?? 0);
const readyWaitMs = Number(process.env.RAW_READY_WAIT_MS ?? 10_000);
/** The gateway's `retryAfterMs` of `SERVICE_NOT_READY`. */
const NOT_READY_RETRY_AFTER_MS = 2_000;
let ready = !(warmupMs > 0);
/** Connections waiting for the warm-up: their user, their ready-wait timer and their early frames. */
const held = new Map<WebSocket, { userId: string; timer: NodeJS.Timeout; early: Array<[RawData, boolean]> }>();

function log(message: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ message, timestamp: Date.now(), ...fields })}\n`);
}

function send(socket: WebSocket, event: string, data: unknown): void {
  if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ event, data }));
}

function tokenOf(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) return /^Bearer[ ]+(\S+)[ ]*$/iu.exec(header)?.[1];
  const query = new URL(request.url ?? '/', 'http://localhost').searchParams.get('token');
  return query === null || query === '' ? undefined : query;
}

/** Whether `signature` signs `signingInput` with the key the header names (HS256: `JWT_SECRET`). */
function signedBy(alg: unknown, kid: unknown, signingInput: string, signature: Buffer): boolean {
  if (alg === 'HS256') {
    if (secret.length === 0) return false;
    const expected = createHmac('sha256', secret).update(signingInput).digest();
    return signature.length === expected.length && timingSafeEqual(signature, expected);
  }
  // The key decides the algorithm: a header naming another one for it (RS256 → HS256) is refused.
  const known = typeof kid === 'string' ? jwks.get(kid) : undefined;
  if (known === undefined || known.alg !== alg) return false;
  return SIGNATURES[known.alg]?.(Buffer.from(signingInput), known.key, signature) === true;
}

function audienceIncludes(aud: unknown, expected: string): boolean {
  return aud === expected || (Array.isArray(aud) && aud.includes(expected));
}

/**
 * The user id of a valid token: HS256 (with `JWT_SECRET`) or the algorithm of the `RAW_JWKS` key
 * named by `kid`, signature, `exp` in the future, `iss` and `aud` when configured, non-empty `sub`.
 */
function verify(token: string | undefined): { userId: string } | { code: string } {
  if (token === undefined || token.length > MAX_TOKEN_LENGTH) return { code: 'UNAUTHORIZED' };
  const parts = token.split('.');
  if (parts.length !== 3) return { code: 'UNAUTHORIZED' };
  const [header = '', payload = '', signature = ''] = parts;
  try {
    const { alg, kid } = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (!signedBy(alg, kid, `${header}.${payload}`, Buffer.from(signature, 'base64url'))) {
      return { code: 'UNAUTHORIZED' };
    }
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (typeof claims.exp !== 'number') return { code: 'UNAUTHORIZED' };
    if (claims.exp * 1000 <= Date.now()) return { code: 'TOKEN_EXPIRED' };
    if (issuer !== undefined && claims.iss !== issuer) return { code: 'UNAUTHORIZED' };
    if (audience !== undefined && !audienceIncludes(claims.aud, audience)) return { code: 'UNAUTHORIZED' };
    if (typeof claims.sub !== 'string' || claims.sub === '') return { code: 'UNAUTHORIZED' };
    return { userId: claims.sub };
  } catch {
    return { code: 'UNAUTHORIZED' };
  }
}

function onMessage(socket: WebSocket, raw: RawData, isBinary: boolean): void {
  if (isBinary) return send(socket, 'error', { code: 'BAD_REQUEST', message: 'binary frame', retryable: false });
  let frame: { event?: unknown; data?: Record<string, unknown> };
  try {
    frame = JSON.parse((raw as Buffer).toString('utf8')) as typeof frame;
  } catch {
    return send(socket, 'error', { code: 'BAD_REQUEST', message: 'not JSON', retryable: false });
  }
  const data = typeof frame.data === 'object' && frame.data !== null ? frame.data : {};
  const requestId = typeof data.requestId === 'string' ? data.requestId : undefined;
  if (requestId !== undefined && requestId.length > MAX_REQUEST_ID_LENGTH) {
    return send(socket, 'error', { code: 'VALIDATION_FAILED', message: 'requestId', retryable: false, requestId });
  }
  switch (frame.event) {
    case 'ping':
      return send(
        socket,
        'pong',
        requestId === undefined
          ? { serverTime: new Date().toISOString() }
          : { requestId, serverTime: new Date().toISOString() },
      );
    case 'stream': {
      // What the gateway does for a run's deltas, without the run: one frame per piece, back to back.
      const count = typeof data.count === 'number' ? Math.min(data.count, 1_000_000) : 0;
      const text = typeof data.text === 'string' ? data.text : '';
      const runId = randomUUID();
      for (let seq = 1; seq <= count; seq += 1) send(socket, 'agent_message_delta', { text, runId, requestId, seq });
      return send(socket, 'stream_done', { requestId, runId, count });
    }
    case 'agent_request':
      return echoRun(socket, requestId, data.message, data.threadId);
    default:
      return send(socket, 'error', { code: 'UNKNOWN_EVENT', message: 'unknown event', retryable: false, requestId });
  }
}

/** Words with their trailing whitespace, as the embedded model streams them. */
function tokenize(text: string): string[] {
  return text.match(/\s*\S+\s*/gu) ?? [];
}

/** The embedded model's answer to a plain message, run by run, without a store or a model. */
function echoRun(socket: WebSocket, requestId: string | undefined, message: unknown, given: unknown): void {
  if (requestId === undefined || typeof message !== 'string' || message === '') {
    return send(socket, 'error', { code: 'VALIDATION_FAILED', message: 'request', retryable: false, requestId });
  }
  const runId = randomUUID();
  const threadId = typeof given === 'string' ? given : randomUUID();
  const chatMessage = (role: string, content: string) => ({
    id: randomUUID(),
    threadId,
    role,
    content,
    runId,
    createdAt: new Date().toISOString(),
  });
  let seq = 0;
  const event = (name: string, data: Record<string, unknown>): void =>
    send(socket, name, { ...data, runId, requestId, seq: (seq += 1) });
  event('agent_started', { threadId, userMessage: chatMessage('user', message) });
  event('agent_thinking', { step: 1 });
  const reply = `You said: "${message}". I am the embedded local model, so I can only echo it back to you.`;
  const words = tokenize(reply);
  for (const text of words) event('agent_message_delta', { text });
  event('agent_completed', {
    threadId,
    message: chatMessage('assistant', reply),
    usage: { promptTokens: tokenize(message).length, completionTokens: words.length },
  });
}

function establish(socket: WebSocket, userId: string, early: ReadonlyArray<[RawData, boolean]> = []): void {
  send(socket, 'connection_established', {
    connectionId: randomUUID(),
    userId,
    protocolVersion: PROTOCOL_VERSION,
    heartbeatMs: HEARTBEAT_MS,
    serverTime: new Date().toISOString(),
  });
  socket.on('message', (raw, isBinary) => onMessage(socket, raw, isBinary));
  for (const [raw, isBinary] of early) onMessage(socket, raw, isBinary);
}

/** Waits for the warm-up: established when it ends, refused with 1013 after `readyWaitMs`. */
function hold(socket: WebSocket, userId: string): void {
  const early: Array<[RawData, boolean]> = [];
  const onEarly = (raw: RawData, isBinary: boolean): void => {
    if (early.length < 32) early.push([raw, isBinary]);
  };
  const timer = setTimeout(() => {
    held.delete(socket);
    socket.off('message', onEarly);
    send(socket, 'error', {
      code: 'SERVICE_NOT_READY',
      message: `service not ready after ${readyWaitMs} ms (waiting for llm)`,
      retryable: true,
      retryAfterMs: NOT_READY_RETRY_AFTER_MS,
      missing: ['llm'],
    });
    socket.close(1013, 'service not ready, retry later');
  }, readyWaitMs);
  socket.on('message', onEarly);
  socket.once('close', () => {
    clearTimeout(timer);
    held.delete(socket);
  });
  held.set(socket, { userId, timer, early });
}

/** The warm-up is over: every held connection is established, in one loop. */
function becomeReady(): void {
  log('ready', { held: held.size });
  ready = true;
  const released = held.size;
  for (const [socket, { userId, timer, early }] of held) {
    clearTimeout(timer);
    socket.removeAllListeners('message');
    establish(socket, userId, early);
  }
  held.clear();
  log('released', { released });
}

const http = createServer((request, response) => {
  if (request.url === '/health/ready' && !ready) {
    response.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"starting"}');
    return;
  }
  const known = request.url === '/health/ready' || request.url === '/health/live';
  response.writeHead(known ? 200 : 404, { 'content-type': 'application/json' }).end('{"status":"ok"}');
});
const wss = new WebSocketServer({ server: http, path: '/ws', perMessageDeflate: false, maxPayload: MAX_PAYLOAD_BYTES });
wss.on('connection', (socket, request) => {
  socket.on('error', () => undefined);
  const verdict = verify(tokenOf(request));
  if ('code' in verdict) {
    send(socket, 'error', { code: verdict.code, message: 'authentication failed', retryable: false });
    socket.close(1008, verdict.code === 'TOKEN_EXPIRED' ? 'token expired' : 'unauthorized');
    return;
  }
  if (ready) establish(socket, verdict.userId);
  else hold(socket, verdict.userId);
});
http.listen(port, host, () => {
  process.stdout.write(`raw-server listening on ${host}:${port}\n`);
  if (!ready) setTimeout(becomeReady, warmupMs);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
