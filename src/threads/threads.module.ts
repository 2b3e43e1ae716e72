import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module.js';
import { MessageRepository } from './message.repository.js';
import { RunRepository } from './run.repository.js';
import { RunEventRepository } from './run-event.repository.js';
import { RunJournal } from './run-journal.service.js';
import { ThreadRepository } from './thread.repository.js';
import { ThreadsService } from './threads.service.js';

@Module({
  imports: [DatabaseModule],
  providers: [ThreadsService, RunJournal, ThreadRepository, MessageRepository, RunRepository, RunEventRepository],
  exports: [ThreadsService, RunJournal],
})
export class ThreadsModule {}
