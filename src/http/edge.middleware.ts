import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AppConfig } from '../config/app-config.js';
import { originNotAllowed } from '../errors/client-errors.js';

/** How long a browser may reuse a preflight's answer. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;
const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * Headers on every HTTP answer, JSON, probes and errors included. The chat page sets its own
 * Content-Security-Policy on top (it runs scripts); everything else is data and may run nothing.
 */
export function securityHeaders(edge: AppConfig['httpEdge']): RequestHandler {
  return (_request: Request, response: Response, next: NextFunction) => {
    response.setHeader('X-Content-Type-Options', 'nosniff');
    response.setHeader('Referrer-Policy', 'no-referrer');
    response.setHeader('X-Frame-Options', 'DENY');
    response.setHeader('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
    response.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    response.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    if (edge.hsts) response.setHeader('Strict-Transport-Security', HSTS);
    next();
  };
}

/**
 * CORS for the HTTP API, from the same allow-list as WebSocket origins (`ALLOWED_ORIGINS` or
 * `WS_ALLOWED_ORIGINS`; no list: any origin outside production, none in production).
 *
 * - A request without `Origin`, or from this service's own origin, passes untouched.
 * - An allowed origin gets `Access-Control-Allow-Origin: <that origin>` (never `*`, with
 *   `Vary: Origin`); a preflight is answered 204 here with the methods and headers the API takes.
 * - Credentials: the API authenticates with a bearer token and sets no cookie, so
 *   `Access-Control-Allow-Credentials` is never sent and a browser sends no cookie cross-origin.
 * - Any other origin is refused with 403 `ORIGIN_NOT_ALLOWED` before the route runs, preflight
 *   or not: a page elsewhere cannot even cause a request's effects (a development token, say).
 */
export function corsPolicy(edge: AppConfig['httpEdge']): RequestHandler {
  const allowed = new Set(edge.allowedOrigins);
  return (request: Request, response: Response, next: NextFunction) => {
    const origin = request.headers.origin;
    if (origin === undefined) {
      next();
      return;
    }
    response.vary('Origin');
    if (isSameOrigin(origin, request)) {
      next();
      return;
    }
    if (!edge.anyOrigin && !allowed.has(origin)) {
      response.setHeader('Cache-Control', 'no-store');
      response.status(403).json(originNotAllowed(origin).toPayload());
      return;
    }
    response.setHeader('Access-Control-Allow-Origin', origin);
    response.setHeader('Access-Control-Expose-Headers', 'Retry-After');
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) {
      response.setHeader('Access-Control-Allow-Methods', 'GET, POST');
      response.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
      response.setHeader('Access-Control-Max-Age', String(PREFLIGHT_MAX_AGE_SECONDS));
      response.status(204).end();
      return;
    }
    next();
  };
}

/** The page this service serves calls it with its own origin; a proxy in front may rename the host. */
function isSameOrigin(origin: string, request: Request): boolean {
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  const forwarded = request.headers['x-forwarded-host'];
  return host === request.headers.host || (typeof forwarded === 'string' && host === forwarded.split(',')[0]?.trim());
}
