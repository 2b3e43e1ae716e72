import { Controller, Get, Param, Query, Req, UseFilters, UseGuards } from '@nestjs/common';
import * as z from 'zod';
import { type AuthenticatedRequest, BearerAuthGuard } from '../auth/bearer-auth.guard.js';
import { isId } from '../database/ids.js';
import type { ThreadHistoryResult, ThreadListResult } from '../protocol/events.js';
import { ReadinessGuard } from '../readiness/readiness.guard.js';
import { ThreadsService } from '../threads/threads.service.js';
import { toThreadHistory, toThreadList } from '../threads/thread.wire.js';
import { HttpErrorFilter } from './http-error.filter.js';
import { RequestValidationPipe } from './request-validation.pipe.js';
import { UserRateLimitGuard } from './request-rate-limits.js';

const limit = (max: number, defaultValue: number) =>
  z
    .string()
    .regex(/^\d{1,6}$/u, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(1).max(max))
    .default(defaultValue);

const listQuery = z.object({ limit: limit(100, 20), cursor: z.string().min(1).max(200).optional() });
const uuid = z.string().refine(isId, 'must be a UUID as returned by the server');
const historyQuery = z.object({ limit: limit(200, 50), before: uuid.optional() });

/**
 * The two history reads of the WebSocket protocol over HTTP, for front-ends that render history
 * before opening the socket. Same bearer token, same payloads (without `requestId`), same error codes.
 */
@Controller('threads')
@UseGuards(ReadinessGuard, BearerAuthGuard, UserRateLimitGuard)
@UseFilters(HttpErrorFilter)
export class ThreadsController {
  constructor(private readonly threads: ThreadsService) {}

  @Get()
  async list(
    @Req() request: AuthenticatedRequest,
    @Query(new RequestValidationPipe(listQuery)) query: z.infer<typeof listQuery>,
  ): Promise<Omit<ThreadListResult, 'requestId'>> {
    const page = await this.threads.listThreads(request.principal.userId, query.limit, query.cursor);
    return toThreadList(page);
  }

  @Get(':threadId/messages')
  async messages(
    @Req() request: AuthenticatedRequest,
    @Param('threadId', new RequestValidationPipe(uuid, 'threadId')) threadId: string,
    @Query(new RequestValidationPipe(historyQuery)) query: z.infer<typeof historyQuery>,
  ): Promise<Omit<ThreadHistoryResult, 'requestId'>> {
    const page = await this.threads.history(request.principal.userId, threadId, query.limit, query.before);
    return toThreadHistory(threadId, page);
  }
}
