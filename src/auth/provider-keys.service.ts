import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { BehaviorSubject, type Observable } from 'rxjs';
import type { AppDependency } from '../app.dependencies.js';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { ReadinessService } from '../readiness/readiness.service.js';
import { discoverJwksUri, type FetchedKeySet, fetchKeySet } from './jwks-source.js';
import type { VerificationKey } from './jws-algorithms.js';

const DEPENDENCY: AppDependency = 'auth';
/** Refreshes are never closer than this, whatever `Cache-Control` says. */
const MIN_REFRESH_MS = 1_000;
/** After a failed background refresh, the next try comes after 1 s, 2 s, 4 s… up to this. */
const MAX_RETRY_MS = 60_000;

/** Whether the cached keys are as fresh as the provider's last answer allows. */
export interface KeysHealth {
  readonly status: 'fresh' | 'degraded';
  readonly since: number;
  readonly lastError?: string;
}

/** What the key store did so far, read by metrics at scrape time. */
export interface KeyStats {
  fetches: number;
  failures: number;
  /** Fetches caused by a token naming a key the store did not hold. */
  unknownKeyRefetches: number;
  keys: number;
}

/**
 * An identity provider's public keys (`AUTH_JWKS_URL`, or `AUTH_ISSUER_URL` and its discovery
 * document), held imported so that every handshake verifies synchronously. When configured it is
 * the readiness dependency `auth`: the instance is not ready before it holds the keys. After that
 * the provider being unreachable never makes it unready: the cached keys keep serving and
 * `/health/ready` shows `auth` degraded with the reason, until a refresh succeeds.
 *
 * Refreshes: in the background when the answer's `Cache-Control` max-age runs out (at most
 * `AUTH_JWKS_REFRESH_MS` apart), and once for a token naming an unknown `kid` (a rotation), at most
 * once per `AUTH_JWKS_COOLDOWN_MS` so that a flood of made-up `kid`s cannot hammer the provider.
 * Each refresh replaces the set: a key the provider stopped publishing is no longer trusted.
 */
@Injectable()
export class ProviderKeys implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Auth');
  private readonly settings: NonNullable<AppConfig['auth']['jwks']> | undefined;
  readonly stats: KeyStats = { fetches: 0, failures: 0, unknownKeyRefetches: 0, keys: 0 };
  private byKid = new Map<string, VerificationKey>();
  private keys: readonly VerificationKey[] = [];
  private jwksUri: string | undefined;
  private loaded = false;
  private inFlight: Promise<void> | undefined;
  private lastFetchAt = Number.NEGATIVE_INFINITY;
  private refreshedAt: number | undefined;
  private nextRefreshAt: number | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private failuresInARow = 0;
  private readonly stop = new AbortController();
  private readonly health = new BehaviorSubject<KeysHealth>({ status: 'fresh', since: Date.now() });
  readonly health$: Observable<KeysHealth> = this.health.asObservable();

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly readiness: ReadinessService,
  ) {
    this.settings = config.auth.jwks;
  }

  /** Whether an identity provider is configured. */
  get enabled(): boolean {
    return this.settings !== undefined;
  }

  /** True once the keys are held (always, without a provider): until then no token of theirs can be checked. */
  get ready(): boolean {
    return this.settings === undefined || this.loaded;
  }

  /** The allow-list of algorithms for these keys (empty without a provider). */
  get algorithms(): readonly string[] {
    return this.settings?.algorithms ?? [];
  }

  onApplicationBootstrap(): void {
    if (this.settings === undefined) return;
    this.readiness.track(DEPENDENCY, (signal) => this.init(signal), { details: () => this.healthDetails() });
  }

  onApplicationShutdown(): void {
    this.stop.abort();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.health.complete();
  }

  /** The key a token's header names. */
  byId(kid: string): VerificationKey | undefined {
    return this.byKid.get(kid);
  }

  /** Every key held, for a token that names none. */
  all(): readonly VerificationKey[] {
    return this.keys;
  }

  /**
   * A token named a key this store does not hold: the provider may have rotated. Returns the
   * refetch to wait for (the one in flight, or a new one when the cool-down has passed), or
   * undefined when no refetch is allowed now: then the token is refused as it is.
   */
  refetchForUnknownKey(): Promise<void> | undefined {
    if (!this.loaded || this.settings === undefined) return undefined;
    if (this.inFlight !== undefined) return this.inFlight;
    if (performance.now() - this.lastFetchAt < this.settings.cooldownMs) return undefined;
    this.stats.unknownKeyRefetches += 1;
    return this.refresh('a token named an unknown key');
  }

  private async init(signal: AbortSignal): Promise<void> {
    const settings = this.settings;
    if (settings === undefined) return;
    if (this.jwksUri === undefined) {
      this.jwksUri =
        settings.jwksUrl ?? (await discoverJwksUri(settings.issuerUrl ?? '', this.config.auth.issuer ?? '', signal));
    }
    const fetched = await this.fetch(signal);
    this.loaded = true;
    this.logger.log(
      `holding ${fetched.keys.length} key(s) of ${this.jwksUri} (${describeKeys(fetched.keys)}); accepting ${settings.algorithms.join(', ')}${this.config.auth.jwtSecret === undefined ? '' : ' and HS256 (JWT_SECRET)'}`,
    );
  }

  /** One fetch that replaces the set, shared by everyone who asks while it runs. Never rejects. */
  private async refresh(reason: string): Promise<void> {
    if (this.inFlight !== undefined) return this.inFlight;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.inFlight = this.fetch(this.stop.signal).then(
      (fetched) => {
        this.failuresInARow = 0;
        if (this.health.getValue().status === 'degraded') {
          this.logger.log(`keys refreshed again (${describeKeys(fetched.keys)})`);
          this.health.next({ status: 'fresh', since: Date.now() });
        } else {
          this.logger.debug(`keys refreshed (${reason}): ${describeKeys(fetched.keys)}`);
        }
      },
      (error: unknown) => {
        if (this.stop.signal.aborted) return;
        this.failuresInARow += 1;
        const lastError = error instanceof Error ? error.message : String(error);
        const current = this.health.getValue();
        if (current.status === 'fresh') {
          this.logger.warn(
            `cannot refresh the provider's keys (${reason}): ${lastError}; the cached keys keep serving`,
          );
        }
        this.health.next({
          status: 'degraded',
          since: current.status === 'degraded' ? current.since : Date.now(),
          lastError,
        });
        this.schedule(Math.min(1_000 * 2 ** (this.failuresInARow - 1), MAX_RETRY_MS, this.settings?.refreshMs ?? 0));
      },
    );
    try {
      await this.inFlight;
    } finally {
      this.inFlight = undefined;
    }
  }

  /** Fetches and imports the set, replaces the held one, and schedules the next background refresh. */
  private async fetch(signal: AbortSignal): Promise<FetchedKeySet> {
    const uri = this.jwksUri ?? '';
    this.lastFetchAt = performance.now();
    this.stats.fetches += 1;
    let fetched: FetchedKeySet;
    try {
      fetched = await fetchKeySet(uri, signal);
    } catch (error) {
      this.stats.failures += 1;
      throw error;
    }
    if (signal.aborted) return fetched;
    for (const skipped of fetched.skipped) this.logger.debug(`key left out of ${uri}: ${skipped}`);
    this.keys = fetched.keys;
    this.byKid = new Map(
      fetched.keys.filter((key) => key.kid !== undefined).map((key) => [key.kid ?? '', key] as const),
    );
    this.stats.keys = fetched.keys.length;
    this.refreshedAt = Date.now();
    const refreshMs = this.settings?.refreshMs ?? MIN_REFRESH_MS;
    this.schedule(Math.max(Math.min(fetched.maxAgeMs ?? refreshMs, refreshMs), MIN_REFRESH_MS));
    return fetched;
  }

  private schedule(delayMs: number): void {
    if (this.stop.signal.aborted) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.nextRefreshAt = Date.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.refresh('scheduled');
    }, delayMs);
    this.timer.unref();
  }

  /** The `auth` entry of `/health/ready`: what is held and, when the provider does not answer, since when. */
  private healthDetails(): Record<string, unknown> {
    const { status, since, lastError } = this.health.getValue();
    return {
      keys: this.keys.length,
      ...(this.jwksUri === undefined ? {} : { jwksUri: this.jwksUri }),
      ...(this.refreshedAt === undefined ? {} : { refreshedAt: new Date(this.refreshedAt).toISOString() }),
      ...(this.nextRefreshAt === undefined ? {} : { nextRefreshAt: new Date(this.nextRefreshAt).toISOString() }),
      ...(status === 'degraded'
        ? { degraded: true, degradedSince: new Date(since).toISOString(), authError: lastError }
        : {}),
    };
  }
}

function describeKeys(keys: readonly VerificationKey[]): string {
  return keys.map((key) => `${key.kid ?? '(no kid)'} ${key.alg ?? key.kty}`).join(', ');
}
