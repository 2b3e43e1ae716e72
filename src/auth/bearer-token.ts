import type { IncomingMessage } from 'node:http';

const BEARER = /^Bearer[ ]+(\S+)[ ]*$/iu;

/**
 * The token from `Authorization: Bearer <jwt>`, or from `?token=<jwt>` because browsers cannot set
 * headers on a WebSocket. The header wins when both are present; a non-Bearer header counts as none.
 */
export function extractBearerToken(request: IncomingMessage): string | undefined {
  if (request.headers.authorization !== undefined) return headerToken(request);
  const query = new URL(request.url ?? '/', 'http://localhost').searchParams.get('token');
  return query === null || query === '' ? undefined : query;
}

/**
 * The token from `Authorization: Bearer <jwt>` only: for plain HTTP, where every client can set
 * headers and a token in the URL would end up in access and proxy logs.
 */
export function headerToken(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  return header === undefined ? undefined : BEARER.exec(header)?.[1];
}
