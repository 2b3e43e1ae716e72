/**
 * `node dist/http/openapi.command.js > docs/openapi.json` (after `npm run build`): prints the OpenAPI
 * document the code describes. The application is created, never initialised: no dependency starts,
 * nothing listens, and the environment is not read, so every machine prints the same file.
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from '../app.module.js';
import { loadConfig } from '../config/load-config.js';
import { createOpenApiDocument, serializeOpenApiDocument } from './openapi.document.js';

// Development, so that the routes that exist only outside production are described too.
const { config } = loadConfig({ NODE_ENV: 'development', DATABASE_URL: 'sqlite::memory:' });
try {
  const app = await NestFactory.create(AppModule.forRoot(config), { logger: false });
  try {
    process.stdout.write(serializeOpenApiDocument(createOpenApiDocument(app)));
  } finally {
    await app.close();
  }
} catch (error) {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}
