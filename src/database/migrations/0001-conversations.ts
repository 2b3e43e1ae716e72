import { type Kysely, sql } from 'kysely';

/** Threads, their messages, agent runs and the events of each run (kept for replay). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('threads')
    .addColumn('id', 'varchar(36)', (column) => column.primaryKey())
    .addColumn('owner_id', 'varchar(255)', (column) => column.notNull())
    .addColumn('title', 'text', (column) => column.notNull())
    .addColumn('created_at', 'bigint', (column) => column.notNull())
    .addColumn('updated_at', 'bigint', (column) => column.notNull())
    .execute();
  await db.schema
    .createIndex('threads_owner_recent')
    .on('threads')
    .columns(['owner_id', 'updated_at desc', 'id desc'])
    .execute();

  await db.schema
    .createTable('messages')
    .addColumn('id', 'varchar(36)', (column) => column.primaryKey())
    .addColumn('thread_id', 'varchar(36)', (column) => column.notNull().references('threads.id').onDelete('cascade'))
    .addColumn('role', 'varchar(16)', (column) => column.notNull().check(sql`role in ('user', 'assistant')`))
    .addColumn('content', 'text', (column) => column.notNull())
    .addColumn('run_id', 'varchar(36)')
    .addColumn('created_at', 'bigint', (column) => column.notNull())
    .execute();
  await db.schema.createIndex('messages_thread_order').on('messages').columns(['thread_id', 'id']).execute();

  await db.schema
    .createTable('runs')
    .addColumn('id', 'varchar(36)', (column) => column.primaryKey())
    .addColumn('thread_id', 'varchar(36)', (column) => column.notNull().references('threads.id').onDelete('cascade'))
    .addColumn('owner_id', 'varchar(255)', (column) => column.notNull())
    .addColumn('request_id', 'varchar(128)', (column) => column.notNull())
    .addColumn('instance_id', 'varchar(64)', (column) => column.notNull())
    .addColumn('status', 'varchar(16)', (column) =>
      column.notNull().check(sql`status in ('running', 'completed', 'failed', 'cancelled', 'interrupted')`),
    )
    .addColumn('message_id', 'varchar(36)')
    .addColumn('error_code', 'varchar(64)')
    .addColumn('error_message', 'text')
    .addColumn('prompt_tokens', 'integer')
    .addColumn('completion_tokens', 'integer')
    .addColumn('created_at', 'bigint', (column) => column.notNull())
    .addColumn('updated_at', 'bigint', (column) => column.notNull())
    .addColumn('finished_at', 'bigint')
    .execute();
  await db.schema.createIndex('runs_status_instance').on('runs').columns(['status', 'instance_id']).execute();

  await db.schema
    .createTable('run_events')
    .addColumn('run_id', 'varchar(36)', (column) => column.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (column) => column.notNull())
    .addColumn('event', 'varchar(64)', (column) => column.notNull())
    .addColumn('payload', 'text', (column) => column.notNull())
    .addColumn('created_at', 'bigint', (column) => column.notNull())
    .addPrimaryKeyConstraint('run_events_pk', ['run_id', 'seq'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['run_events', 'runs', 'messages', 'threads']) await db.schema.dropTable(table).execute();
}
