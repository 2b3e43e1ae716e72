import type { Kysely } from 'kysely';

/**
 * Fleet mode: the leases of live instances (a replica is alive while its lease has not expired),
 * and a run's cancellation requested through the database (how `agent_cancel` reaches the replica
 * executing a run while the bus is down).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('instances')
    .addColumn('id', 'varchar(64)', (column) => column.primaryKey())
    .addColumn('host', 'varchar(255)', (column) => column.notNull())
    .addColumn('fleet', 'integer', (column) => column.notNull())
    .addColumn('started_at', 'bigint', (column) => column.notNull())
    .addColumn('expires_at', 'bigint', (column) => column.notNull())
    .execute();
  await db.schema.alterTable('runs').addColumn('cancel_requested_at', 'bigint').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('runs').dropColumn('cancel_requested_at').execute();
  await db.schema.dropTable('instances').execute();
}
