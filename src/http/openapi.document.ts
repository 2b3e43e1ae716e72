import { readFileSync } from 'node:fs';
import type { INestApplication } from '@nestjs/common';
import {
  ApiOperation,
  ApiTags,
  DocumentBuilder,
  type OpenAPIObject,
  type SchemaObject,
  SwaggerModule,
} from '@nestjs/swagger';
import { documentHealthRoutes } from '../health/health.openapi.js';
import { documentMetricsRoutes } from '../metrics/metrics.openapi.js';
import { documentPageRoutes } from '../page/page.openapi.js';
import { OpenApiController } from './openapi.controller.js';
import {
  ApiErrorResponse,
  ApiJsonResponse,
  ApiOriginRefusedResponse,
  documentController,
  documentRoute,
} from './openapi.decorators.js';
import { OPENAPI_SCHEMAS } from './openapi.schemas.js';
import { documentThreadRoutes } from './threads.openapi.js';

const PACKAGE_URL = new URL('../../package.json', import.meta.url);

let documented = false;

/** Decorates every controller, once per process: tags and parameters append, so twice would list each twice. */
function documentRoutes(): void {
  if (documented) return;
  documented = true;
  documentThreadRoutes();
  documentPageRoutes();
  documentHealthRoutes();
  documentMetricsRoutes();
  documentController(OpenApiController, ApiTags('openapi'));
  documentRoute(
    OpenApiController,
    'serve',
    ApiOperation({ operationId: 'openapi', summary: 'This document' }),
    ApiJsonResponse(200, 'OpenApiDocument', 'docs/openapi.json as committed'),
    ApiErrorResponse(404, ['NOT_FOUND'], 'docs/openapi.json was not shipped with this build'),
    ApiOriginRefusedResponse(),
  );
}

/**
 * The OpenAPI 3.1 document of `app`'s HTTP routes (the WebSocket is docs/asyncapi.yaml's). Needs
 * the application created, not initialised or listening: routes and their metadata are all it reads.
 */
export function createOpenApiDocument(app: INestApplication): OpenAPIObject {
  documentRoutes();
  const { version } = JSON.parse(readFileSync(PACKAGE_URL, 'utf8')) as { version: string };
  const config = new DocumentBuilder()
    .setOpenAPIVersion('3.1.0')
    .setTitle('agent-gateway')
    .setDescription(
      'The HTTP routes of the agent gateway: thread reads, probes, metrics and development tokens. Chat itself is the WebSocket protocol of docs/asyncapi.yaml. Every error body is an ErrorPayload with a stable `code`; generated from the code (src/http/openapi.command.ts).',
    )
    .setVersion(version)
    .addServer('{scheme}://{host}', 'An agent-gateway instance', {
      scheme: { enum: ['https', 'http'], default: 'https' },
      host: { default: 'localhost:3000', description: 'Host and port' },
    })
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description: 'The same token as the WebSocket, in the `Authorization` header only (never `?token=`).',
      },
      'bearerHeader',
    )
    .addTag('threads', 'The history reads of the WebSocket protocol, for pages that render history first')
    .addTag('probes', 'Liveness and readiness, for orchestrators')
    .addTag('metrics', 'Prometheus')
    .addTag('development', 'Outside production only')
    .addTag('openapi', 'This document')
    .build();
  const document = SwaggerModule.createDocument(app, config);
  return {
    ...document,
    components: {
      ...document.components,
      // Plain JSON Schema 2020-12, which OpenAPI 3.1 takes as it is; swagger's types stop at 3.0's subset.
      schemas: { ...document.components?.schemas, ...(OPENAPI_SCHEMAS as Record<string, SchemaObject>) },
    },
  };
}

const TOP_LEVEL_ORDER = ['openapi', 'info', 'servers', 'tags', 'security', 'paths', 'components'];

/**
 * docs/openapi.json's text: keys sorted (the top level in the usual reading order), so the file
 * never depends on the order modules register their routes in and a diff shows only real changes.
 */
export function serializeOpenApiDocument(document: OpenAPIObject): string {
  const rank = (key: string): number => {
    const index = TOP_LEVEL_ORDER.indexOf(key);
    return index === -1 ? TOP_LEVEL_ORDER.length : index;
  };
  const top = Object.keys(document).sort((a, b) => rank(a) - rank(b) || byCodePoint(a, b));
  const record = document as unknown as Record<string, unknown>;
  const ordered = Object.fromEntries(top.map((key) => [key, sortKeys(record[key])]));
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .sort(([a], [b]) => byCodePoint(a, b))
      .map(([key, child]) => [key, sortKeys(child)]),
  );
}

/** Not `localeCompare`: the file must come out the same whatever the machine's locale. */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
