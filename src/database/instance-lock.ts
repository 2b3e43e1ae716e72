import { Logger } from '@nestjs/common';
import type pg from 'pg';
import { DatabaseLock, lockQuery } from './database-locks.js';

const RECONNECT_MIN_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;

/**
 * Proof of life for this process on PostgreSQL: a session-level advisory lock keyed by the instance
 * id, held on a dedicated connection for as long as the process lives. The server releases it the
 * moment the process dies (its connection goes), so another replica can tell a dead instance's runs
 * from a live one's with `pg_try_advisory_lock`, without heartbeats or timeouts.
 */
export class InstanceLock {
  private readonly logger = new Logger('Database');
  private client: pg.Client | undefined;
  private retryMs = RECONNECT_MIN_MS;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly connectionString: string,
    private readonly instanceId: string,
  ) {}

  async acquire(): Promise<void> {
    const { default: driver } = await import('pg');
    const client = new driver.Client({ connectionString: this.connectionString, connectionTimeoutMillis: 5_000 });
    client.on('error', (error) => this.lost(client, error));
    await client.connect();
    try {
      const { text, values } = lockQuery('advisory_lock', DatabaseLock.instance(this.instanceId));
      await client.query(text, values);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    this.client = client;
    this.retryMs = RECONNECT_MIN_MS;
  }

  async release(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  /** While the lock is lost this instance looks dead to others; take it back as soon as possible. */
  private lost(client: pg.Client, error: Error): void {
    if (this.client !== client || this.closed) return;
    this.client = undefined;
    this.logger.warn(`instance lock connection lost (${error.message}); reconnecting`);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.closed) return;
      this.acquire().then(
        () => this.logger.log('instance lock re-acquired'),
        (error: unknown) => {
          this.logger.warn(`instance lock: ${error instanceof Error ? error.message : String(error)}`);
          this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_MS);
          this.scheduleReconnect();
        },
      );
    }, this.retryMs);
    this.timer.unref();
  }
}
