import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Deferred, deferred } from './deferred.js';

/**
 * A scripted OpenAI-compatible Chat Completions endpoint on loopback. It speaks real HTTP and
 * real Server-Sent Events, so the official SDK runs unmodified against it, retries included.
 */

/** One streamed `chat.completion.chunk`, reduced to what a test scripts. */
export interface FakeChunk {
  readonly content?: string;
  /** Sent as `delta.reasoning_content`, as vLLM, llama.cpp and DeepSeek stream a model's reasoning. */
  readonly reasoning?: string;
  readonly toolCall?: {
    readonly index: number;
    readonly id?: string;
    readonly name?: string;
    readonly arguments?: string;
  };
  readonly finishReason?: 'stop' | 'tool_calls' | 'length';
}

export interface FakeUsage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
}

export interface FakeApiError {
  readonly message: string;
  readonly type: string;
  readonly code: string | null;
}

export type FakeResponse =
  | { readonly kind: 'stream'; readonly chunks: readonly FakeChunk[]; readonly usage?: FakeUsage }
  /** A JSON error body. 429 and 5xx get `retry-after-ms: 10` unless `headers` says otherwise, so SDK retries are quick. */
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly headers?: Record<string, string>;
      readonly error?: FakeApiError;
      /**
       * Send the headers and half the body, then wait. The SDK cancels the body of a response it
       * is about to retry, so `closed` settling tells a test the client has reached its retry wait.
       */
      readonly holdBody?: boolean;
    }
  /** Chunks, then `data: {"error": …}` and the end of the response, as OpenAI does when generation fails. */
  | { readonly kind: 'error-mid-stream'; readonly chunks: readonly FakeChunk[]; readonly error: FakeApiError }
  /** Chunks, then the socket is destroyed without finishing the chunked body. */
  | { readonly kind: 'drop-mid-stream'; readonly chunks: readonly FakeChunk[] }
  /** Chunks, then silence until the client goes away or `close()`. */
  | { readonly kind: 'stall'; readonly chunks: readonly FakeChunk[] };

export interface FakeRequest {
  /** The parsed JSON body. */
  readonly body: any;
  readonly headers: IncomingHttpHeaders;
  /**
   * Settles when the exchange is over: `completed` is true if the server finished its response,
   * false if the connection closed first (the client aborted, or the script dropped it).
   */
  readonly closed: Promise<{ readonly completed: boolean }>;
}

export interface FakeOpenAi {
  /** Base URL including `/v1`, ready for the SDK's `baseURL`. */
  readonly url: string;
  /** Every POST /v1/chat/completions, in arrival order. */
  readonly requests: readonly FakeRequest[];
  /** The request at `index` (0-based), once it has arrived. */
  received(index: number): Promise<FakeRequest>;
  /** Queues responses, served one per request in order; with none left the server answers 500. */
  script(...responses: FakeResponse[]): void;
  /** Stops listening and destroys every open socket, stalled streams included. */
  close(): Promise<void>;
}

export function textDelta(content: string): FakeChunk {
  return { content };
}

export function reasoningDelta(reasoning: string): FakeChunk {
  return { reasoning };
}

export function toolCallDelta(toolCall: NonNullable<FakeChunk['toolCall']>): FakeChunk {
  return { toolCall };
}

export function finishChunk(finishReason: NonNullable<FakeChunk['finishReason']>): FakeChunk {
  return { finishReason };
}

/** A reply streamed as the given text deltas, then `finish_reason: stop`. */
export function textStream(parts: readonly string[], usage?: FakeUsage): FakeResponse {
  return { kind: 'stream', chunks: [...parts.map(textDelta), finishChunk('stop')], usage };
}

/** One tool call the way OpenAI streams it: id and name with empty arguments, then the argument pieces. */
export function toolCallStream(call: {
  readonly id?: string;
  readonly name: string;
  readonly argumentFragments: readonly string[];
  readonly usage?: FakeUsage;
}): FakeResponse {
  const first = toolCallDelta({ index: 0, id: call.id, name: call.name, arguments: '' });
  const rest = call.argumentFragments.map((piece) => toolCallDelta({ index: 0, arguments: piece }));
  return { kind: 'stream', chunks: [first, ...rest, finishChunk('tool_calls')], usage: call.usage };
}

export async function startFakeOpenAi(): Promise<FakeOpenAi> {
  const queue: FakeResponse[] = [];
  const requests: FakeRequest[] = [];
  const arrivals: Deferred<FakeRequest>[] = [];
  const arrival = (index: number): Deferred<FakeRequest> => (arrivals[index] ??= deferred<FakeRequest>());

  const server = createServer((req, res) => {
    // A write can fail once the client has gone; that is the client's business, not a crash.
    handle(req, res).catch(() => res.destroy());
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const closed = deferred<{ completed: boolean }>();
    // `res` (not `req`) closes with the connection: `req` emits close as soon as its body is read.
    res.on('close', () => closed.resolve({ completed: res.writableFinished }));
    let raw = '';
    for await (const piece of req) raw += String(piece);
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      return sendError(res, 404, {
        message: `no route ${req.method} ${req.url}`,
        type: 'invalid_request_error',
        code: null,
      });
    }
    const request = { body: parseJson(raw), headers: req.headers, closed: closed.promise };
    requests.push(request);
    arrival(requests.length - 1).resolve(request);
    const response = queue.shift() ?? {
      kind: 'status',
      status: 500,
      error: { message: 'fake server: no scripted response left', type: 'server_error', code: null },
    };
    await serve(res, response);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    received: (index) => arrival(index).promise,
    script: (...responses) => void queue.push(...responses),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function serve(res: ServerResponse, response: FakeResponse): Promise<void> {
  if (response.kind === 'status') {
    const retryable = response.status === 429 || response.status >= 500;
    const headers = { ...(retryable ? { 'retry-after-ms': '10' } : {}), ...response.headers };
    const error = response.error ?? { message: `fake ${response.status}`, type: 'fake_error', code: null };
    if (!response.holdBody) return sendError(res, response.status, error, headers);
    res.writeHead(response.status, { 'content-type': 'application/json', ...headers });
    res.write(JSON.stringify({ error }).slice(0, 10));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  // Node holds headers back until the first write; a stall with no chunks must still send them.
  res.flushHeaders();
  for (const chunk of response.chunks) await writeEvent(res, toWireChunk(chunk));
  switch (response.kind) {
    case 'stream':
      if (response.usage) await writeEvent(res, usageChunk(response.usage));
      await writeEvent(res, '[DONE]');
      res.end();
      return;
    case 'error-mid-stream':
      await writeEvent(res, { error: response.error });
      res.end();
      return;
    case 'drop-mid-stream':
      res.socket?.destroy();
      return;
    case 'stall':
      return;
    default: {
      const _exhaustive: never = response;
      throw new Error(`unknown fake response ${JSON.stringify(_exhaustive)}`);
    }
  }
}

function sendError(
  res: ServerResponse,
  status: number,
  error: FakeApiError,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ error }));
}

/** Resolves once the event is handed to the socket, so a following destroy cannot swallow it. */
function writeEvent(res: ServerResponse, data: unknown): Promise<void> {
  const line = `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
  return new Promise((resolve, reject) => {
    res.write(line, (error) => (error ? reject(error) : resolve()));
  });
}

const base = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'fake-model' };

function toWireChunk(chunk: FakeChunk): unknown {
  const delta: Record<string, unknown> = { role: 'assistant' };
  if (chunk.content !== undefined) delta.content = chunk.content;
  if (chunk.reasoning !== undefined) delta.reasoning_content = chunk.reasoning;
  if (chunk.toolCall) {
    const { index, id, name, arguments: args } = chunk.toolCall;
    const fn: Record<string, string> = {};
    if (name !== undefined) fn.name = name;
    if (args !== undefined) fn.arguments = args;
    delta.tool_calls = [{ index, ...(id !== undefined ? { id, type: 'function' } : {}), function: fn }];
  }
  return { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: chunk.finishReason ?? null }] };
}

function usageChunk(usage: FakeUsage): unknown {
  return { ...base, choices: [], usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } };
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}
