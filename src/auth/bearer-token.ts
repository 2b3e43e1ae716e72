import type { IncomingMessage } from 'node:http';

const BEARER = /^Bearer[ ]+(\S+)[ ]*$/iu;

/**
 * The token from `Authorization: Bearer <jwt>`, or from `?token=<jwt>` because browsers cannot set
 * headers on a WebSocket. The header wins when both are present; a non-Bearer header counts as none.
 */
export function extractBearerToken(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) return BEARER.exec(header)?.[1];
  const query = new URL(request.url ?? '/', 'http://localhost').searchParams.get('token');
  return query === null || query === '' ? undefined : query;
}
