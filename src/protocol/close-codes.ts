/**
 * WebSocket close codes of the protocol (1006 and 1007 are observed, never sent by the gateway's
 * own code). `docs/protocol.md` has the table of what a client should do with each one; the client
 * SDK drives reconnection from the same values.
 */
export const CloseCode = {
  /** Normal closure: the client or the server ended the session on purpose. */
  NORMAL: 1000,
  /** Going away: the peer is leaving (browser tab closed, server process exiting). */
  GOING_AWAY: 1001,
  /** No close frame at all (a dropped network, a terminated socket). Never sent: only observed. */
  ABNORMAL_CLOSURE: 1006,
  /** A text frame that is not UTF-8 (RFC 6455): `ws` closes with it. */
  INVALID_FRAME_PAYLOAD_DATA: 1007,
  /** Policy violation: authentication failed or the origin is not allowed. Do not retry as is. */
  POLICY_VIOLATION: 1008,
  /** Message too big: a frame exceeded `WS_MAX_PAYLOAD_BYTES`. */
  MESSAGE_TOO_BIG: 1009,
  /** Internal error. The gateway never sends it on purpose: seeing it means a bug. */
  INTERNAL_ERROR: 1011,
  /** Service restart: this instance is shutting down; reconnect, another instance will answer. */
  SERVICE_RESTART: 1012,
  /** Try again later: the service is not ready yet; reconnect after `retryAfterMs`. */
  TRY_AGAIN_LATER: 1013,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** RFC 6455 limits a close reason to 123 bytes of UTF-8; detail goes in the preceding error frame. */
export const MAX_CLOSE_REASON_BYTES = 123;
