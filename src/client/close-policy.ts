import { CloseCode } from '../protocol/close-codes.js';
import type { ErrorPayload } from '../protocol/error-codes.js';

/** How a connection ended, as the client saw it. */
export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
  /** The connection-level `error` frame the server sent just before closing, if any. */
  readonly error?: ErrorPayload;
}

/** What to do about a close. */
export type CloseDecision =
  | { readonly action: 'reconnect'; readonly notBeforeMs: number }
  | { readonly action: 'refresh_token' }
  | { readonly action: 'stop' };

/**
 * Codes worth reconnecting after (docs/protocol.md, "Close codes"): going away, no close frame,
 * a frame that was not UTF-8 or too big (neither is resent), internal error, service restart, not
 * ready.
 */
const RECONNECT_CODES = new Set<number>([
  CloseCode.GOING_AWAY,
  CloseCode.ABNORMAL_CLOSURE,
  CloseCode.INVALID_FRAME_PAYLOAD_DATA,
  CloseCode.MESSAGE_TOO_BIG,
  CloseCode.INTERNAL_ERROR,
  CloseCode.SERVICE_RESTART,
  CloseCode.TRY_AGAIN_LATER,
]);

/** Authentication failures a new token can fix; `ORIGIN_NOT_ALLOWED` is not one of them. */
const TOKEN_ERRORS = new Set(['TOKEN_EXPIRED', 'UNAUTHORIZED']);

/**
 * The close-code table as code. 1008 never reconnects as is: an expired or refused token asks
 * the application for a new one (once); a flood (`RATE_LIMITED`) reconnects after `retryAfterMs`;
 * anything else on 1008 stops. 1000 is a deliberate end.
 */
export function decideOnClose(close: CloseInfo): CloseDecision {
  if (close.code === CloseCode.POLICY_VIOLATION) {
    // Closed for sending far over the frame rate: the client's own doing, worth a slower second try.
    if (close.error?.code === 'RATE_LIMITED')
      return { action: 'reconnect', notBeforeMs: close.error.retryAfterMs ?? 0 };
    return close.error !== undefined && TOKEN_ERRORS.has(close.error.code)
      ? { action: 'refresh_token' }
      : { action: 'stop' };
  }
  if (RECONNECT_CODES.has(close.code)) return { action: 'reconnect', notBeforeMs: close.error?.retryAfterMs ?? 0 };
  return { action: 'stop' };
}
