import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import { BehaviorSubject, type Observable } from 'rxjs';
import type { AppDependency } from '../app.dependencies.js';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { DatabaseService } from '../database/database.service.js';
import { ReadinessService } from '../readiness/readiness.service.js';
import { FleetKeys } from './fleet.keys.js';

const DEPENDENCY: AppDependency = 'bus';
/** A command not answered by then fails (and the caller falls back to PostgreSQL). */
const COMMAND_TIMEOUT_MS = 2_000;
const CONNECT_TIMEOUT_MS = 3_000;
const RECONNECT_MAX_MS = 2_000;

/** Whether Redis answers, learned from the connections themselves. */
export interface BusHealth {
  readonly status: 'up' | 'down';
  readonly since: number;
  readonly lastError?: string;
}

/** What a fleet's bus did so far, read by metrics at scrape time. */
export interface BusStats {
  /** Commands or connections that failed. */
  errors: number;
  /** Events this instance delivered to its clients from a run executing on another instance. */
  deliveries: number;
  /** Clients here following a run that executes on another instance. */
  followers: number;
}

type MessageHandler = (message: string) => void;

/**
 * The fleet's shared engine (`REDIS_URL`): two Redis connections, one for commands and one for
 * subscriptions. In fleet mode it is the readiness dependency `bus`, needed at start; after that a
 * Redis outage is reported as `bus` degraded in `/health/ready` (never unready: every replica shares
 * Redis, and unrouting them all would not bring it back) while callers fall back to PostgreSQL.
 * Without `REDIS_URL`, {@link enabled} is false and nothing here connects.
 */
@Injectable()
export class FleetBus implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Fleet');
  readonly enabled: boolean;
  readonly keys: FleetKeys;
  readonly stats: BusStats = { errors: 0, deliveries: 0, followers: 0 };
  private commands: RedisClient | undefined;
  private subscriber: RedisClient | undefined;
  private readonly handlers = new Map<string, Set<MessageHandler>>();
  /** Channels Redis confirmed, and the callbacks waiting for a confirmation. */
  private readonly confirmed = new Set<string>();
  private readonly pending = new Map<string, Array<() => void>>();
  private readonly health = new BehaviorSubject<BusHealth>({ status: 'up', since: Date.now() });
  readonly health$: Observable<BusHealth> = this.health.asObservable();
  private closed = false;

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly database: DatabaseService,
    private readonly readiness: ReadinessService,
  ) {
    this.enabled = config.fleet !== undefined;
    this.keys = new FleetKeys(config.fleet?.keyPrefix ?? 'agw');
  }

  onApplicationBootstrap(): void {
    if (!this.enabled) return;
    this.readiness.track(DEPENDENCY, (signal) => this.init(signal), { details: () => this.healthDetails() });
  }

  /** True while both connections are ready. */
  get up(): boolean {
    return this.health.getValue().status === 'up' && this.commands?.status === 'ready';
  }

  get currentHealth(): BusHealth {
    return this.health.getValue();
  }

  /** This instance, as other instances address it. */
  get instanceId(): string {
    return this.database.instanceId;
  }

  /** The command connection. Throws while the bus is disabled or not initialised. */
  get redis(): RedisClient {
    if (this.commands === undefined) throw new Error('fleet bus used before it was initialised');
    return this.commands;
  }

  /** Runs a command, counting a failure (which is rethrown: the caller decides the fallback). */
  async run<T>(command: (redis: RedisClient) => Promise<T>): Promise<T> {
    try {
      return await command(this.redis);
    } catch (error) {
      this.failed(error);
      throw error;
    }
  }

  /**
   * Calls `handler` with every message on `channel` until the returned function is called.
   * `subscribed` is called once Redis has confirmed the subscription (or failed to): from then on
   * no message is missed while the connection holds, so a reader catches up then.
   */
  subscribe(channel: string, handler: MessageHandler, subscribed?: () => void): () => void {
    let set = this.handlers.get(channel);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(channel, set);
      const confirmed = (): void => {
        this.confirmed.add(channel);
        for (const notify of this.pending.get(channel) ?? []) notify();
        this.pending.delete(channel);
      };
      if (this.subscriber === undefined) confirmed();
      else
        this.subscriber.subscribe(channel).then(confirmed, (error: unknown) => {
          this.failed(error);
          confirmed();
        });
    }
    set.add(handler);
    if (subscribed !== undefined) {
      if (this.confirmed.has(channel)) queueMicrotask(subscribed);
      else this.pending.set(channel, [...(this.pending.get(channel) ?? []), subscribed]);
    }
    return () => {
      const handlers = this.handlers.get(channel);
      if (handlers === undefined || !handlers.delete(handler) || handlers.size > 0) return;
      this.handlers.delete(channel);
      this.confirmed.delete(channel);
      this.pending.delete(channel);
      this.subscriber?.unsubscribe(channel).catch((error: unknown) => this.failed(error));
    };
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    this.health.complete();
    this.handlers.clear();
    const clients = [this.commands, this.subscriber].filter((client) => client !== undefined);
    // QUIT only on a ready connection: queued on one that is reconnecting, it would wait for Redis.
    await Promise.all(
      clients.map(async (client) => {
        if (client.status !== 'ready') return client.disconnect();
        await client.quit().then(undefined, () => client.disconnect());
      }),
    );
  }

  /** Counts a failed command or connection, and marks the bus down while its connections are not ready. */
  failed(error: unknown): void {
    this.stats.errors += 1;
    const lastError = error instanceof Error ? error.message : String(error);
    const current = this.health.getValue();
    if (this.commands?.status === 'ready' && this.subscriber?.status === 'ready') return;
    if (current.status === 'up') this.logger.warn(`bus unavailable: ${lastError}; falling back to PostgreSQL`);
    if (!this.closed) {
      this.health.next({ status: 'down', lastError, since: current.status === 'down' ? current.since : Date.now() });
    }
  }

  private async init(signal: AbortSignal): Promise<void> {
    const fleet = this.config.fleet;
    if (fleet === undefined) return;
    if (this.commands === undefined || this.subscriber === undefined) {
      // Through `default` (ioredis's `module.exports`): ioredis is CommonJS, and the production
      // bundle (src/build/) gives a CommonJS module imported on demand no named exports.
      const { Redis } = (await import('ioredis')).default;
      const options: RedisOptions = {
        lazyConnect: true,
        // Fail at once while disconnected: every caller has a PostgreSQL fallback, and a queue of
        // commands replayed after an outage would deliver stale events late.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        commandTimeout: COMMAND_TIMEOUT_MS,
        connectTimeout: CONNECT_TIMEOUT_MS,
        retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, RECONNECT_MAX_MS),
        connectionName: `agent-gateway:${this.instanceId}`,
      };
      this.commands = new Redis(fleet.redisUrl, options);
      this.subscriber = new Redis(fleet.redisUrl, { ...options, enableOfflineQueue: true, commandTimeout: undefined });
      for (const client of [this.commands, this.subscriber]) {
        client.on('error', (error: unknown) => this.failed(error));
        client.on('close', () => {
          if (!this.closed) this.failed(new Error('connection closed'));
        });
        client.on('ready', () => this.reconnected());
      }
      this.subscriber.on('message', (channel: string, message: string) => this.dispatch(channel, message));
    }
    await Promise.all([this.connected(this.commands, signal), this.connected(this.subscriber, signal)]);
    await this.commands.ping();
    this.logger.log('bus connected (fleet mode)');
  }

  private async connected(client: RedisClient, signal: AbortSignal): Promise<void> {
    if (client.status === 'ready') return;
    if (client.status === 'wait' || client.status === 'end') {
      // ioredis keeps reconnecting on its own after the first attempt; the promise only reports it.
      await client.connect().catch(() => undefined);
    }
    if ((client.status as string) === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error): void => {
        clearTimeout(timer);
        client.off('ready', onReady);
        signal.removeEventListener('abort', onAbort);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onReady = (): void => done();
      const onAbort = (): void => done(new Error('aborted'));
      const timer = setTimeout(
        () => done(new Error(`Redis not reachable: ${this.health.getValue().lastError ?? 'no answer'}`)),
        CONNECT_TIMEOUT_MS,
      );
      client.on('ready', onReady);
      signal.addEventListener('abort', onAbort);
    });
  }

  private reconnected(): void {
    if (this.commands?.status !== 'ready' || this.subscriber?.status !== 'ready' || this.closed) return;
    // Subscriptions made while the subscriber was away are taken now (ioredis restores its own).
    const channels = [...this.handlers.keys()];
    if (channels.length > 0) this.subscriber.subscribe(...channels).catch((error: unknown) => this.failed(error));
    if (this.health.getValue().status === 'down') {
      this.logger.log('bus reachable again');
      this.health.next({ status: 'up', since: Date.now() });
    }
  }

  private dispatch(channel: string, message: string): void {
    const handlers = this.handlers.get(channel);
    if (handlers === undefined) return;
    for (const handler of [...handlers]) {
      try {
        handler(message);
      } catch (error) {
        this.logger.error(`handler of ${channel} failed: ${String(error)}`);
      }
    }
  }

  /** The `bus` entry of `/health/ready`: reported, not judged (see the class comment). */
  private healthDetails(): Record<string, unknown> {
    const { status, lastError, since } = this.health.getValue();
    return status === 'up'
      ? { bus: 'redis' }
      : { bus: 'redis', degraded: true, degradedSince: new Date(since).toISOString(), busError: lastError };
  }
}
