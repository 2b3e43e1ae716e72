import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { ThreadsModule } from '../threads/threads.module.js';
import { HttpEdgeModule } from './http-edge.module.js';
import { OpenApiController } from './openapi.controller.js';
import { ThreadsController } from './threads.controller.js';

/**
 * The HTTP edge besides the probes and the page: the thread reads over HTTP and the OpenAPI
 * document that describes every HTTP route, with the error shape and validation every HTTP route
 * shares (`HttpErrorFilter`, `RequestValidationPipe`, `NotFoundFilter`).
 */
@Module({
  imports: [AuthModule, ThreadsModule, HttpEdgeModule],
  controllers: [ThreadsController, OpenApiController],
})
export class HttpModule {}
