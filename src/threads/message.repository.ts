import { Injectable } from '@nestjs/common';
import type { Selectable } from 'kysely';
import { DatabaseService } from '../database/database.service.js';
import type { Database, MessagesTable } from '../database/database.types.js';
import type { Message } from './thread.types.js';

@Injectable()
export class MessageRepository {
  constructor(private readonly database: DatabaseService) {}

  async insert(message: Message, db: Database = this.database.db): Promise<void> {
    await db
      .insertInto('messages')
      .values({
        id: message.id,
        thread_id: message.threadId,
        role: message.role,
        content: message.content,
        run_id: message.runId ?? null,
        created_at: message.createdAt.getTime(),
      })
      .execute();
  }

  async find(id: string): Promise<Message | undefined> {
    const row = await this.database.db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toMessage(row);
  }

  /** The thread's newest `limit` messages older than `beforeId` (ids are time-ordered), newest first. */
  async listNewestFirst(threadId: string, limit: number, beforeId?: string): Promise<Message[]> {
    const rows = await this.database.db
      .selectFrom('messages')
      .selectAll()
      .where('thread_id', '=', threadId)
      .$if(beforeId !== undefined, (query) => query.where('id', '<', beforeId ?? ''))
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toMessage);
  }
}

function toMessage(row: Selectable<MessagesTable>): Message {
  return {
    id: row.id,
    threadId: row.thread_id,
    role: row.role,
    content: row.content,
    ...(row.run_id === null ? {} : { runId: row.run_id }),
    createdAt: new Date(Number(row.created_at)),
  };
}
