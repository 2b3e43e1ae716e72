import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import type { Database } from '../database/database.types.js';
import type { StoredRunEvent } from './thread.types.js';

@Injectable()
export class RunEventRepository {
  constructor(private readonly database: DatabaseService) {}

  async insertMany(events: readonly StoredRunEvent[], at: Date, db: Database = this.database.db): Promise<void> {
    if (events.length === 0) return;
    await db
      .insertInto('run_events')
      .values(
        events.map((event) => ({
          run_id: event.runId,
          seq: event.seq,
          event: event.event,
          payload: JSON.stringify(event.data),
          created_at: at.getTime(),
        })),
      )
      .execute();
  }

  /** The run's events with `seq > afterSeq`, in order. */
  async listAfter(runId: string, afterSeq: number): Promise<StoredRunEvent[]> {
    const rows = await this.database.db
      .selectFrom('run_events')
      .select(['run_id', 'seq', 'event', 'payload'])
      .where('run_id', '=', runId)
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .execute();
    return rows.map((row) => ({
      runId: row.run_id,
      seq: Number(row.seq),
      event: row.event,
      data: JSON.parse(row.payload) as Record<string, unknown>,
    }));
  }
}
