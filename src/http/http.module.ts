import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { ThreadsModule } from '../threads/threads.module.js';
import { ThreadsController } from './threads.controller.js';

/**
 * The HTTP edge besides the probes and the page: the thread reads over HTTP, with the error shape
 * and validation every HTTP route shares (`HttpErrorFilter`, `RequestValidationPipe`,
 * `NotFoundFilter`).
 */
@Module({
  imports: [AuthModule, ThreadsModule],
  controllers: [ThreadsController],
})
export class HttpModule {}
