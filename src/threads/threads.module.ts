import { Module } from '@nestjs/common';
import { InMemoryThreadStore } from './in-memory.thread-store.js';
import { ThreadStore } from './thread.store.js';
import { ThreadsService } from './threads.service.js';

@Module({
  providers: [ThreadsService, { provide: ThreadStore, useClass: InMemoryThreadStore }],
  exports: [ThreadsService],
})
export class ThreadsModule {}
