import { randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { BehaviorSubject, type Observable } from 'rxjs';
import type { AppConfig } from '../config/app-config.js';
import { AppError } from '../errors/app-error.js';
import { InjectConfig } from '../config/config.module.js';
import { connect, engineOf } from './database.connect.js';
import type { Connection, Database, DatabaseEngine } from './database.types.js';
import { InstanceLease } from './instance-lease.js';
import { migrationProvider } from './migrations/migrations.js';
import type { StorageObserver } from './observed-dialect.js';

/**
 * Whether the database answered lately, learned from the queries themselves. A shared database
 * going away must not take every replica out of service at once, so this is a detail of
 * `/health/ready` (and runs fail with a retryable `STORAGE_UNAVAILABLE`), not a readiness input.
 */
export interface StorageHealth {
  readonly status: 'up' | 'down';
  readonly lastError?: string;
  readonly since: number;
}

/** At shutdown, how long queries still running (an initialisation, at worst) get before they are cut. */
const CLOSE_GRACE_MS = 2_000;

/**
 * The one database connection (SQLite file or PostgreSQL pool) and its schema. `init` is part of
 * the `threads` readiness dependency: it connects and migrates, and readiness retries it with
 * backoff while the database is not reachable yet.
 */
@Injectable()
export class DatabaseService implements OnApplicationShutdown {
  private readonly logger = new Logger('Database');
  readonly engine: DatabaseEngine;
  /** This process, as recorded on the runs it executes. */
  readonly instanceId = randomUUID();
  private connection: Connection | undefined;
  private closed = false;
  /** PostgreSQL: this instance's lease, its proof of life to the other replicas (see {@link InstanceLease}). */
  readonly lease: InstanceLease | undefined;
  private readonly health = new BehaviorSubject<StorageHealth>({ status: 'up', since: Date.now() });
  readonly health$: Observable<StorageHealth> = this.health.asObservable();
  /** Statements sent and transactions ended so far (metrics read them when scraped). */
  readonly stats = { statements: 0, transactions: 0 };
  private readonly observer: StorageObserver = {
    statement: () => {
      this.stats.statements += 1;
    },
    transaction: () => {
      this.stats.transactions += 1;
    },
    up: () => {
      if (this.health.getValue().status === 'up') return;
      this.logger.log('database reachable again');
      this.health.next({ status: 'up', since: Date.now() });
    },
    down: (error) => {
      const current = this.health.getValue();
      const lastError = error instanceof Error ? error.message : String(error);
      if (current.status === 'up') this.logger.warn(`database unavailable: ${lastError}`);
      this.health.next({ status: 'down', lastError, since: current.status === 'down' ? current.since : Date.now() });
    },
  };

  constructor(@InjectConfig() private readonly config: AppConfig) {
    this.engine = engineOf(config.database.url);
    this.lease =
      this.engine === 'postgres'
        ? new InstanceLease(() => this.db, this.instanceId, config.database.leaseTtlMs, config.fleet !== undefined)
        : undefined;
  }

  get db(): Database {
    if (this.connection === undefined) throw new Error('database used before it was initialised');
    return this.connection.db;
  }

  /** Connects and brings the schema up to date. Safe to call again after a failure. */
  async init(signal: AbortSignal): Promise<void> {
    try {
      await this.connectAndMigrate(signal);
    } catch (error) {
      // Readiness logs the driver's own words ("connect ECONNREFUSED …"), not the client-facing code.
      throw error instanceof AppError && error.cause !== undefined ? error.cause : error;
    }
  }

  private async connectAndMigrate(signal: AbortSignal): Promise<void> {
    if (this.connection === undefined) {
      const connection = await connect(this.config.database, this.observer, this.logger, this.instanceId);
      if (this.closed) {
        // The app shut down while this was connecting: nothing else would ever close this pool.
        await connection.close(0);
        throw new Error('database initialisation abandoned: the service is shutting down');
      }
      this.connection = connection;
    }
    const { db } = this.connection;
    const { Migrator, sql } = await import('kysely');
    await sql`select 1`.execute(db);
    signal.throwIfAborted();
    const schema = this.config.database.schema;
    if (this.engine === 'postgres' && schema !== undefined) {
      await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
    }
    // With PostgreSQL the migrator holds an advisory lock, so replicas starting together migrate once.
    const { error, results = [] } = await new Migrator({
      db,
      provider: migrationProvider,
      // Named, not left to the search path: told nothing, Kysely takes a migration table in *any*
      // schema of the database for its own, and then fails to find it in this one.
      ...(this.engine === 'postgres' ? { migrationTableSchema: await currentSchema(db) } : {}),
    }).migrateToLatest();
    for (const result of results) {
      if (result.status === 'Success') this.logger.log(`migration ${result.migrationName} applied`);
    }
    if (error !== undefined) {
      const failed = results.find((result) => result.status === 'Error')?.migrationName ?? 'unknown';
      throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`, {
        cause: error,
      });
    }
    if (this.lease !== undefined && !this.lease.current.held) await this.lease.acquire();
  }

  /**
   * Whether the process `instanceId` may still be executing runs. SQLite has one writer, this
   * process; with PostgreSQL, a live instance's lease has not expired (see {@link InstanceLease}).
   */
  async isInstanceAlive(instanceId: string): Promise<boolean> {
    if (instanceId === this.instanceId) return true;
    if (this.lease === undefined) return false;
    return this.lease.isAlive(instanceId);
  }

  get currentHealth(): StorageHealth {
    return this.health.getValue();
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    this.health.complete();
    // Every run of this instance is stored by now (the agent stops first): others may see it dead.
    await this.lease
      ?.release()
      .catch((error: unknown) => this.logger.warn(`releasing the lease failed: ${String(error)}`));
    const connection = this.connection;
    this.connection = undefined;
    await connection?.close(CLOSE_GRACE_MS);
  }
}

/** The schema new tables go to: the configured one, or the first of the server's default search path. */
async function currentSchema(db: Database): Promise<string> {
  const { sql } = await import('kysely');
  const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
  const schema = rows[0]?.schema;
  if (schema === null || schema === undefined)
    throw new Error('no schema to migrate: the search path names none that exists');
  return schema;
}
