import { readFile } from 'node:fs/promises';
import { Controller, Get, Logger, NotFoundException, type OnModuleInit, Res } from '@nestjs/common';
import type { Response } from 'express';

/** The committed document: `../../docs/` is the repository root's from src/http/ (Jest) and dist/http/ alike. */
const DOCUMENT_URL = new URL('../../docs/openapi.json', import.meta.url);

/**
 * `GET /openapi.json`: docs/openapi.json as committed, read once at start-up. Serving the committed
 * file rather than building the document here keeps `@nestjs/swagger` out of the running service
 * (see openapi.decorators.ts); the OpenAPI spec keeps the file equal to what the code generates.
 */
@Controller()
export class OpenApiController implements OnModuleInit {
  private readonly logger = new Logger('OpenApi');
  private document: Buffer | undefined;

  async onModuleInit(): Promise<void> {
    try {
      this.document = await readFile(DOCUMENT_URL);
    } catch (error) {
      // A packaging mistake, not a reason to refuse chat traffic: say so once, answer 404.
      this.logger.warn(
        `${DOCUMENT_URL.pathname} is not readable (${error instanceof Error ? error.message : String(error)}); GET /openapi.json answers 404`,
      );
    }
  }

  @Get('openapi.json')
  serve(@Res() response: Response): void {
    if (this.document === undefined) throw new NotFoundException('no OpenAPI document');
    response
      .status(200)
      .setHeader('Content-Type', 'application/json; charset=utf-8')
      .setHeader('Cache-Control', 'no-cache')
      .send(this.document);
  }
}
