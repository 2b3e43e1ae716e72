import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { filter, type Subscription } from 'rxjs';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { DatabaseService } from '../database/database.service.js';
import { FleetBus } from './fleet-bus.service.js';
import { USER_COUNTER_TTL_MS, type UserCounterKind } from './fleet.keys.js';

/**
 * Sets this instance's count in a user's counter hash after summing the other live instances'
 * (fields of instances not in the live list are dropped: their counts expired with their lease).
 * With a limit (>= 0) the count is set only if the total stays within it; returns -1 when refused,
 * else what the other instances hold. One script, so two instances can never both take the last slot.
 *
 * KEYS[1] the hash; ARGV: instance id, this instance's count, limit (-1: none), ttl ms, live ids…
 */
const SET_COUNT = `
local own = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local live = {}
for i = 5, #ARGV do live[ARGV[i]] = true end
local others = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local field = fields[i]
  if field ~= ARGV[1] then
    if live[field] then others = others + tonumber(fields[i + 1]) else redis.call('HDEL', KEYS[1], field) end
  end
end
if limit >= 0 and others + own > limit then return -1 end
if own > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], own)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return others
`;

/** Where an instance's own counts come from (the registry of connections, the run limiter). */
export type LocalCount = (userId: string) => number;

/**
 * Per-user limits for the whole fleet (`WS_MAX_CONNECTIONS_PER_USER`, `AGENT_MAX_RUNS_PER_USER`).
 * Each instance keeps its own counts, as today, and mirrors them into one Redis hash per user and
 * kind (a field per instance); admission checks the sum over live instances. Counts of a dead
 * instance stop counting when its lease expires. While Redis is down the limits hold per instance
 * only, and every count that could not be written is written again when Redis is back.
 */
@Injectable()
export class FleetQuotas implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Fleet');
  private readonly sources = new Map<UserCounterKind, LocalCount>();
  /** `kind\nuserId` of counts Redis may have wrong (a write failed). */
  private readonly unsynced = new Set<string>();
  private live: { ids: string[]; at: number } | undefined;
  private liveQuery: Promise<string[]> | undefined;
  private recovery: Subscription | undefined;

  constructor(
    private readonly bus: FleetBus,
    private readonly database: DatabaseService,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    if (!this.bus.enabled) return;
    this.recovery = this.bus.health$.pipe(filter((health) => health.status === 'up')).subscribe(() => this.resync());
  }

  onModuleDestroy(): void {
    this.recovery?.unsubscribe();
  }

  /** Fleet mode: counts are shared. */
  get enabled(): boolean {
    return this.bus.enabled;
  }

  /** Names where this instance's counts of `kind` are read when they must be written again. */
  source(kind: UserCounterKind, count: LocalCount): void {
    this.sources.set(kind, count);
  }

  /**
   * Whether the user may hold `ownCount` (this instance's count, the new one included) given the
   * other live instances' counts. If so, the count is recorded. Without Redis: true (the caller
   * has already checked its own count against the limit).
   */
  async reserve(kind: UserCounterKind, userId: string, ownCount: number, limit: number): Promise<boolean> {
    if (!this.bus.enabled) return true;
    try {
      const others = await this.setCount(kind, userId, ownCount, limit);
      if (others >= 0) return true;
      // Refused: write what this instance holds by now (its count may have changed meanwhile).
      this.sync(kind, userId);
      return false;
    } catch {
      this.unsynced.add(`${kind}\n${userId}`);
      return true;
    }
  }

  /** Writes this instance's current count of `kind` for the user (after one ended). Never throws. */
  sync(kind: UserCounterKind, userId: string): void {
    if (!this.bus.enabled) return;
    const own = this.sources.get(kind)?.(userId) ?? 0;
    this.setCount(kind, userId, own, -1).catch(() => this.unsynced.add(`${kind}\n${userId}`));
  }

  private async setCount(kind: UserCounterKind, userId: string, own: number, limit: number): Promise<number> {
    const live = await this.liveInstances();
    const key = this.bus.keys.userCounter(kind, userId);
    const result = await this.bus.run((redis) =>
      redis.eval(SET_COUNT, 1, key, this.bus.instanceId, own, limit, USER_COUNTER_TTL_MS, ...live),
    );
    return Number(result);
  }

  /** The live instances, read from their leases at most every third of a lease. */
  private async liveInstances(): Promise<string[]> {
    const maxAgeMs = this.config.database.leaseTtlMs / 3;
    if (this.live !== undefined && performance.now() - this.live.at < maxAgeMs) return this.live.ids;
    this.liveQuery ??= (async () => {
      try {
        const ids = (await this.database.lease?.liveInstances())?.map((instance) => instance.id) ?? [];
        if (!ids.includes(this.bus.instanceId)) ids.push(this.bus.instanceId);
        this.live = { ids, at: performance.now() };
        return ids;
      } catch (error) {
        // PostgreSQL unreachable: the last list known is better than none.
        if (this.live !== undefined) return this.live.ids;
        throw error;
      } finally {
        this.liveQuery = undefined;
      }
    })();
    return this.liveQuery;
  }

  private resync(): void {
    const pending = [...this.unsynced];
    this.unsynced.clear();
    if (pending.length > 0) this.logger.log(`writing ${pending.length} per-user count(s) again after a bus outage`);
    for (const entry of pending) {
      const [kind, userId] = entry.split('\n') as [UserCounterKind, string];
      this.sync(kind, userId);
    }
  }
}
