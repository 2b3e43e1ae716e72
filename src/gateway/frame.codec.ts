import type { RawData } from 'ws';
import { AppError } from '../errors/app-error.js';

/** A client frame after decoding: a request to dispatch, or an error to answer in its place. */
export type InboundFrame =
  | {
      readonly kind: 'request';
      readonly event: string;
      readonly data: Readonly<Record<string, unknown>>;
      readonly requestId?: string;
    }
  | { readonly kind: 'invalid'; readonly error: AppError; readonly requestId?: string };

/**
 * Decodes one frame. Never throws: anything malformed becomes an `invalid` frame that is answered
 * with an error, in order, without closing the socket.
 */
export function decodeFrame(raw: RawData, isBinary: boolean): InboundFrame {
  if (isBinary) return invalid('BAD_REQUEST', 'binary frames are not supported: send JSON text frames');
  let parsed: unknown;
  try {
    parsed = JSON.parse(rawToString(raw));
  } catch {
    return invalid('BAD_REQUEST', 'frame is not valid JSON');
  }
  if (!isPlainObject(parsed)) {
    return invalid('BAD_REQUEST', 'frame must be a JSON object {"event": string, "data": object}');
  }
  const { event, data } = parsed;
  const requestId = isPlainObject(data) && typeof data.requestId === 'string' ? data.requestId : undefined;
  if (typeof event !== 'string' || event === '') {
    return invalid('BAD_REQUEST', 'frame needs a non-empty string "event"', requestId);
  }
  if (data === undefined) return { kind: 'request', event, data: {} };
  if (!isPlainObject(data)) {
    return {
      kind: 'invalid',
      error: new AppError('VALIDATION_FAILED', 'data: must be an object', false, { field: 'data' }),
    };
  }
  return { kind: 'request', event, data, requestId };
}

/** Serialises a server frame; each event is serialised exactly once, whatever the fan-out. */
export function encodeFrame(event: string, data: unknown): string {
  return JSON.stringify({ event, data });
}

function invalid(code: 'BAD_REQUEST', message: string, requestId?: string): InboundFrame {
  return { kind: 'invalid', error: new AppError(code, message, false), requestId };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function rawToString(raw: RawData): string {
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  if (Array.isArray(raw)) return Buffer.concat(raw).toString('utf8');
  return Buffer.from(raw).toString('utf8');
}
