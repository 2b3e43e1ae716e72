import type { RawData } from 'ws';
import type { AppError } from '../errors/app-error.js';
import { badRequest, validationFailed } from '../errors/client-errors.js';
import type { ErrorPayload } from '../protocol/error-codes.js';
import { MAX_REQUEST_ID_LENGTH } from '../protocol/events.js';

/** No `error` frame is larger than this, whatever the client sent (docs/protocol.md, "Bounds"). */
export const MAX_ERROR_FRAME_BYTES = 8_192;
const CONTROL_CHARACTER = /\p{Cc}/u;

/**
 * A request id the server stores and echoes: 1–128 characters of well-formed Unicode without
 * control characters. Anything else is never echoed (the request itself fails validation).
 */
export function isRequestId(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length > 0 &&
    value.length <= MAX_REQUEST_ID_LENGTH &&
    value.isWellFormed() &&
    !CONTROL_CHARACTER.test(value)
  );
}

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
  if (isBinary) return badFrame('binary frames are not supported: send JSON text frames');
  let parsed: unknown;
  try {
    parsed = JSON.parse(rawToString(raw));
  } catch {
    return badFrame('frame is not valid JSON');
  }
  if (!isPlainObject(parsed)) {
    return badFrame('frame must be a JSON object {"event": string, "data": object}');
  }
  const { event, data } = parsed;
  const requestId = isPlainObject(data) && isRequestId(data.requestId) ? data.requestId : undefined;
  if (typeof event !== 'string' || event === '') {
    return badFrame('frame needs a non-empty string "event"', requestId);
  }
  if (data === undefined) return { kind: 'request', event, data: {} };
  if (!isPlainObject(data)) {
    return {
      kind: 'invalid',
      error: validationFailed('data', 'must be an object'),
    };
  }
  return { kind: 'request', event, data, requestId };
}

/** Serialises a server frame; each event is serialised exactly once, whatever the fan-out. */
export function encodeFrame(event: string, data: unknown): string {
  return JSON.stringify({ event, data });
}

/**
 * Serialises an `error` frame of at most {@link MAX_ERROR_FRAME_BYTES}. The server builds its
 * messages from bounded parts; should one still be too large, the message is cut and the id list
 * left out (`unprocessedCount` stays exact), rather than sending (or failing to build) a huge frame.
 */
export function encodeErrorFrame(payload: ErrorPayload): string {
  const frame = encodeFrame('error', payload);
  if (frame.length * 3 <= MAX_ERROR_FRAME_BYTES || Buffer.byteLength(frame) <= MAX_ERROR_FRAME_BYTES) return frame;
  const { unprocessedRequestIds: _dropped, missing, ...rest } = payload;
  return encodeFrame('error', {
    ...rest,
    message: rest.message.slice(0, 1_000),
    ...(rest.field === undefined ? {} : { field: rest.field.slice(0, 200) }),
    ...(missing === undefined ? {} : { missing: missing.slice(0, 20).map((name) => name.slice(0, 64)) }),
    ...(payload.unprocessedRequestIds === undefined ? {} : { unprocessedRequestIds: [] }),
  });
}

function badFrame(message: string, requestId?: string): InboundFrame {
  return { kind: 'invalid', error: badRequest(message), requestId };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function rawToString(raw: RawData): string {
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  if (Array.isArray(raw)) return Buffer.concat(raw).toString('utf8');
  return Buffer.from(raw).toString('utf8');
}
