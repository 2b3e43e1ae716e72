import type { Type } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { HTTP_STATUS_OF } from '../errors/http-status.js';
import type { ErrorCode } from '../protocol/error-codes.js';
import { type SchemaName, schemaRef } from './openapi.schemas.js';

/**
 * How the HTTP routes get their OpenAPI decorators: applied to the controller classes by the
 * `*.openapi.ts` file beside each controller, when docs/openapi.json is built, never when the
 * service runs. Written on the controllers, `@nestjs/swagger` would be imported at start-up, and
 * importing it costs about 200 ms (its `es-toolkit/compat` is hundreds of modules) for metadata
 * only the document builder reads. Routes are still matched by Nest's own metadata, so a route
 * nobody documented shows up in the document with an empty answer, and the OpenAPI spec fails.
 */
export function documentController(controller: Type, ...decorators: ClassDecorator[]): void {
  for (const decorate of decorators) decorate(controller);
}

/** Applies method decorators to `controller.prototype[method]`, as `@Decorator()` on it would. */
export function documentRoute<T>(
  controller: Type<T>,
  method: Extract<keyof T, string>,
  ...decorators: MethodDecorator[]
): void {
  const prototype = controller.prototype as object;
  const descriptor = Object.getOwnPropertyDescriptor(prototype, method);
  if (descriptor === undefined) throw new Error(`${controller.name} has no method ${method}`);
  for (const decorate of decorators) decorate(prototype, method, descriptor);
}

/** A JSON answer whose body is `components/schemas/<schema>`. */
export function ApiJsonResponse(status: number, schema: SchemaName, description: string): MethodDecorator {
  return ApiResponse({ status, description, content: { 'application/json': { schema: schemaRef(schema) } } });
}

/** `corsPolicy` (edge.middleware.ts) refuses a page from a disallowed origin before any route runs. */
export function ApiOriginRefusedResponse(): MethodDecorator {
  return ApiErrorResponse(403, ['ORIGIN_NOT_ALLOWED'], 'A browser page from an origin that is not allowed');
}

export interface ErrorResponseOptions {
  /** The error always carries `retryAfterMs`, so the answer always has `Retry-After`. Default: false. */
  readonly retryAfter?: boolean;
}

/**
 * An error answer: an `ErrorPayload` whose `code` is one of `codes`, each of which must have this
 * status in `HTTP_STATUS_OF` (checked here, so the document cannot contradict the filter).
 */
export function ApiErrorResponse(
  status: number,
  codes: readonly [ErrorCode, ...ErrorCode[]],
  description: string,
  { retryAfter = false }: ErrorResponseOptions = {},
): MethodDecorator {
  const misplaced = codes.filter((code) => HTTP_STATUS_OF[code] !== status);
  if (misplaced.length > 0) throw new Error(`${misplaced.join(', ')} not answered with ${status}`);
  return ApiResponse({
    status,
    description: `${description} (${codes.join(', ')})`,
    content: {
      'application/json': {
        schema: { allOf: [schemaRef('ErrorPayload'), { properties: { code: { enum: [...codes] } } }] },
      },
    },
    ...(retryAfter
      ? {
          headers: {
            'Retry-After': {
              description: 'Seconds to wait before retrying: `retryAfterMs` rounded up.',
              required: true,
              schema: { type: 'integer', minimum: 0 },
            },
          },
        }
      : {}),
  });
}
