import { hostname } from 'node:os';
import { Logger } from '@nestjs/common';
import type { RawBuilder, Sql } from 'kysely';
import { BehaviorSubject, type Observable } from 'rxjs';
import type { Database } from './database.types.js';

/** Whether this instance holds its lease. `lost`: it expired (or may have) before it was renewed. */
export interface LeaseState {
  readonly held: boolean;
  /** Epoch milliseconds of the last change. */
  readonly since: number;
  /** Set once the lease was found expired in the database: other replicas may have ended this instance's runs. */
  readonly expired?: boolean;
}

interface LeaseSql {
  readonly sql: Sql;
  /** Epoch milliseconds on the database's clock: every replica compares leases on one clock. */
  readonly NOW: RawBuilder<number>;
}

/**
 * Kysely is imported when the lease is first used, as everywhere else (`database.connect.ts`): it
 * loads after the port is open, and this file is imported at start by the service that owns it.
 */
async function importLeaseSql(): Promise<LeaseSql> {
  const { sql } = await import('kysely');
  return { sql, NOW: sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint` };
}

/**
 * Proof of life for this process on PostgreSQL: a row in `instances` whose `expires_at` is renewed
 * every third of `ttlMs` in the background. A replica is dead only once its lease has expired, so
 * a connection blip shorter than the lease never makes a live replica look dead (an advisory lock
 * held on one connection did: it went with the connection). Times are the database's, so clocks of
 * the replicas never matter.
 *
 * If the lease cannot be renewed for `ttlMs` (by this process's own clock, counted from the last
 * renewal sent), it is `lost`: the instance must stop starting runs until it has it back.
 */
export class InstanceLease {
  private readonly logger = new Logger('Database');
  private readonly state = new BehaviorSubject<LeaseState>({ held: false, since: Date.now() });
  readonly state$: Observable<LeaseState> = this.state.asObservable();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** `performance.now()` when the last successful renewal was sent: the lease holds until this + ttl. */
  private validFrom = 0;
  private closed = false;
  private renewing = false;
  /** Kysely's, once imported: from then on each query is sent at once, as when Kysely was imported at start. */
  private kysely: LeaseSql | undefined;

  constructor(
    private readonly db: () => Database,
    readonly instanceId: string,
    private readonly ttlMs: number,
    private readonly fleet: boolean,
  ) {}

  get current(): LeaseState {
    return this.state.getValue();
  }

  private async importSql(): Promise<LeaseSql> {
    this.kysely ??= await importLeaseSql();
    return this.kysely;
  }

  /** Takes the lease (at start-up) and starts renewing it. */
  async acquire(): Promise<void> {
    const sentAt = performance.now();
    await this.upsert();
    this.validFrom = sentAt;
    this.set({ held: true, since: Date.now() });
    this.schedule();
  }

  /** Gives the lease back (shutdown, once every run is stored): the instance is dead to others at once. */
  async release(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    if (!this.current.held) return;
    await this.db().deleteFrom('instances').where('id', '=', this.instanceId).execute();
    this.set({ held: false, since: Date.now() });
  }

  /** Stops renewing without deleting the row (the process is going away anyway, or a test kills it). */
  stop(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  /** The instances whose lease has not expired, this one included when it holds its lease. */
  async liveInstances(): Promise<Array<{ id: string; fleet: boolean }>> {
    const { NOW } = this.kysely ?? (await this.importSql());
    const rows = await this.db()
      .selectFrom('instances')
      .select(['id', 'fleet'])
      .where('expires_at', '>', NOW)
      .execute();
    return rows.map((row) => ({ id: row.id, fleet: Number(row.fleet) === 1 }));
  }

  async isAlive(instanceId: string): Promise<boolean> {
    const { NOW } = this.kysely ?? (await this.importSql());
    const row = await this.db()
      .selectFrom('instances')
      .select('id')
      .where('id', '=', instanceId)
      .where('expires_at', '>', NOW)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Forgets leases expired for over an hour whose instance left no run behind. */
  async forgetExpired(): Promise<void> {
    const { sql, NOW } = this.kysely ?? (await this.importSql());
    await this.db()
      .deleteFrom('instances')
      .where('expires_at', '<', sql<number>`${NOW} - 3600000`)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('runs')
              .select('runs.id')
              .whereRef('runs.instance_id', '=', 'instances.id')
              .where('runs.status', '=', 'running'),
          ),
        ),
      )
      .execute();
  }

  private async upsert(): Promise<void> {
    const { sql, NOW } = this.kysely ?? (await this.importSql());
    await this.db()
      .insertInto('instances')
      .values({
        id: this.instanceId,
        host: hostname().slice(0, 255),
        fleet: this.fleet ? 1 : 0,
        started_at: NOW,
        expires_at: sql<number>`${NOW} + ${this.ttlMs}`,
      })
      .onConflict((conflict) => conflict.column('id').doUpdateSet({ expires_at: sql<number>`${NOW} + ${this.ttlMs}` }))
      .execute();
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => void this.renew(), Math.max(50, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    if (this.renewing || this.closed) return;
    this.renewing = true;
    const sentAt = performance.now();
    // If even this attempt hangs, the lease is counted lost once its time is up.
    const watchdog = setTimeout(() => this.checkExpiry(), Math.max(0, this.validFrom + this.ttlMs - sentAt));
    watchdog.unref();
    try {
      const { sql, NOW } = this.kysely ?? (await this.importSql());
      const result = await this.db()
        .updateTable('instances')
        .set({ expires_at: sql<number>`${NOW} + ${this.ttlMs}` })
        .where('id', '=', this.instanceId)
        .where('expires_at', '>', NOW)
        .executeTakeFirst();
      if (result.numUpdatedRows > 0n) {
        this.validFrom = sentAt;
        if (!this.current.held) {
          this.logger.log('instance lease held again');
          this.set({ held: true, since: Date.now() });
        }
      } else {
        // Expired in the database: other replicas may already have interrupted this instance's runs.
        if (this.current.held || this.current.expired !== true) {
          this.logger.warn('instance lease expired before it was renewed; taking a new one');
          this.set({ held: false, since: Date.now(), expired: true });
        }
        await this.upsert();
        this.validFrom = sentAt;
        this.logger.log('instance lease held again');
        this.set({ held: true, since: Date.now() });
      }
    } catch (error) {
      this.checkExpiry(error);
    } finally {
      clearTimeout(watchdog);
      this.renewing = false;
      this.schedule();
    }
  }

  private checkExpiry(error?: unknown): void {
    if (error !== undefined) {
      const reason = error instanceof Error ? error.message : JSON.stringify(error);
      this.logger.warn(`instance lease not renewed: ${reason}`);
    }
    if (this.current.held && performance.now() >= this.validFrom + this.ttlMs) {
      this.logger.warn(`instance lease lost: not renewed for ${this.ttlMs} ms; no new run starts until it is back`);
      this.set({ held: false, since: Date.now() });
    }
  }

  private set(state: LeaseState): void {
    if (this.closed && state.held) return;
    this.state.next(state);
  }
}
