import type { ErrorCode } from '../protocol/error-codes.js';

/** How admission ended for one connection: established, or the reason it was refused. */
export type AdmissionOutcome =
  | 'established'
  | 'unauthorized'
  | 'token_expired'
  | 'origin_not_allowed'
  | 'too_many_connections'
  | 'not_ready'
  | 'shutting_down'
  | 'rate_limited'
  | 'internal_error';

export type FrameDirection = 'in' | 'out';

export type ConnectionLimit = 'message_rate' | 'slow_consumer' | 'flood';

/** Emitted for every frame that arrives before `connection_established`. */
export interface EarlyFrameEvent {
  readonly connectionId: string;
  /** `held` for processing after establishment, or `dropped` beyond the per-connection limit. */
  readonly outcome: 'held' | 'dropped';
}

/**
 * One connection's life as `ConnectionRegistry.events$` reports it: `opened` when the socket
 * is accepted, `admitted` once (established or refused; a client that leaves while held has none),
 * `limited` when a limit is applied, `closed` once. Carries no payloads and no tokens. Frames are
 * counted, not reported one by one (`ConnectionRegistry.frameCounts`).
 */
export type ConnectionEvent =
  | { readonly type: 'opened'; readonly connectionId: string }
  | {
      readonly type: 'admitted';
      readonly connectionId: string;
      readonly outcome: AdmissionOutcome;
      /** Set once the token was verified (established, or refused after that). */
      readonly userId?: string;
      /** Set when refused: the code of the `error` frame sent before the close. */
      readonly errorCode?: ErrorCode;
    }
  | {
      readonly type: 'limited';
      readonly connectionId: string;
      /**
       * `message_rate`: a frame over the rate was dropped; `slow_consumer`: the socket was cut off;
       * `flood`: the peer kept sending far beyond its budget and was closed with 1008.
       */
      readonly limit: ConnectionLimit;
      readonly userId?: string;
    }
  | {
      readonly type: 'closed';
      readonly connectionId: string;
      readonly userId?: string;
      /** The close code as the socket saw it: 1006 when the connection dropped without a close frame. */
      readonly code: number;
      readonly durationMs: number;
    };

/** The admission outcome a refusal with `code` stands for. */
export function refusalOutcome(code: ErrorCode): Exclude<AdmissionOutcome, 'established'> {
  switch (code) {
    case 'UNAUTHORIZED':
      return 'unauthorized';
    case 'TOKEN_EXPIRED':
      return 'token_expired';
    case 'ORIGIN_NOT_ALLOWED':
      return 'origin_not_allowed';
    case 'TOO_MANY_CONNECTIONS':
      return 'too_many_connections';
    case 'SERVICE_NOT_READY':
      return 'not_ready';
    case 'SERVICE_SHUTTING_DOWN':
      return 'shutting_down';
    case 'RATE_LIMITED':
      return 'rate_limited';
    default:
      // The gateway refuses only for the reasons above; anything else is the 1011 path.
      return 'internal_error';
  }
}
