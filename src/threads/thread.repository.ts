import { Injectable } from '@nestjs/common';
import type { Selectable } from 'kysely';
import { DatabaseService } from '../database/database.service.js';
import type { Database, ThreadsTable } from '../database/database.types.js';
import type { Thread } from './thread.types.js';

/** Where the list of a user's threads is cut: the last thread of the previous page. */
export interface ThreadCursor {
  readonly updatedAt: number;
  readonly id: string;
}

@Injectable()
export class ThreadRepository {
  constructor(private readonly database: DatabaseService) {}

  async insert(thread: Thread, db: Database = this.database.db): Promise<void> {
    await db
      .insertInto('threads')
      .values({
        id: thread.id,
        owner_id: thread.ownerId,
        title: thread.title,
        created_at: thread.createdAt.getTime(),
        updated_at: thread.updatedAt.getTime(),
      })
      .execute();
  }

  async findOwned(ownerId: string, id: string): Promise<Thread | undefined> {
    const row = await this.database.db
      .selectFrom('threads')
      .selectAll()
      .where('id', '=', id)
      .where('owner_id', '=', ownerId)
      .executeTakeFirst();
    return row === undefined ? undefined : toThread(row);
  }

  /** Most recently active first; `after` continues from a previous page. */
  async listOwned(ownerId: string, limit: number, after?: ThreadCursor): Promise<Thread[]> {
    const rows = await this.database.db
      .selectFrom('threads')
      .selectAll()
      .where('owner_id', '=', ownerId)
      .$if(after !== undefined, (query) =>
        query.where((eb) =>
          eb.or([
            eb('updated_at', '<', after?.updatedAt ?? 0),
            eb.and([eb('updated_at', '=', after?.updatedAt ?? 0), eb('id', '<', after?.id ?? '')]),
          ]),
        ),
      )
      .orderBy('updated_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toThread);
  }

  /** Moves `updated_at` forward to `at`, never back (concurrent runs of a thread commit in any order). */
  async touch(id: string, at: Date, db: Database = this.database.db): Promise<void> {
    await db
      .updateTable('threads')
      .set((eb) => ({
        updated_at: eb.case().when('updated_at', '<', at.getTime()).then(at.getTime()).else(eb.ref('updated_at')).end(),
      }))
      .where('id', '=', id)
      .execute();
  }
}

function toThread(row: Selectable<ThreadsTable>): Thread {
  return {
    id: row.id,
    ownerId: row.owner_id,
    title: row.title,
    createdAt: new Date(Number(row.created_at)),
    updatedAt: new Date(Number(row.updated_at)),
  };
}
