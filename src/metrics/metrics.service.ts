import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { Registry } from 'prom-client';
import { Subscription } from 'rxjs';
import { RunLifecycle } from '../agent/run-lifecycle.js';
import { ProviderKeys } from '../auth/provider-keys.service.js';
import { DatabaseService } from '../database/database.service.js';
import { FleetBus } from '../fleet/fleet-bus.service.js';
import { ConnectionRegistry } from '../gateway/connection.registry.js';
import { McpServers } from '../mcp/mcp-servers.service.js';
import { ReadinessService } from '../readiness/readiness.service.js';
import { recordAuth } from './auth.metrics.js';
import { recordConnections } from './connection.metrics.js';
import { recordMcpServers } from './mcp.metrics.js';
import { recordFleet } from './fleet.metrics.js';
import { processMetrics } from './process.metrics.js';
import { recordReadiness } from './readiness.metrics.js';
import { recordRuns } from './run.metrics.js';

export interface Scrape {
  readonly contentType: string;
  readonly body: string;
}

/**
 * This application's metrics, in a registry of its own (never prom-client's global one, so several
 * applications in one process keep separate counts). Every value is pushed by a stream the
 * producers expose: readiness snapshots, connection events, run lifecycle events; only frame counts,
 * too frequent for an event each, are read when scraped. Nothing polls, and no producer knows about
 * metrics.
 */
@Injectable()
export class MetricsService implements OnModuleDestroy {
  private readonly registry = new Registry();
  private readonly subscription = new Subscription();

  constructor(
    readiness: ReadinessService,
    connections: ConnectionRegistry,
    runs: RunLifecycle,
    database: DatabaseService,
    bus: FleetBus,
    providerKeys: ProviderKeys,
    mcp: McpServers,
  ) {
    this.subscription.add(recordReadiness(this.registry, readiness.snapshot$, readiness.startupTimeoutMs));
    this.subscription.add(
      recordConnections(this.registry, connections.events$, connections.earlyFrames$, () => connections.frameCounts),
    );
    this.subscription.add(recordRuns(this.registry, runs.events$));
    this.subscription.add(
      recordFleet(this.registry, {
        storage: () => database.stats,
        ...(database.lease === undefined ? {} : { lease$: database.lease.state$ }),
        ...(bus.enabled ? { bus: { health$: bus.health$, stats: () => bus.stats } } : {}),
      }),
    );
    if (mcp.connections.length > 0) {
      this.subscription.add(
        recordMcpServers(
          this.registry,
          mcp.connections.map((connection) => connection.server.name),
          mcp.status$,
        ),
      );
    }
    if (providerKeys.enabled) {
      this.subscription.add(
        recordAuth(this.registry, { health$: providerKeys.health$, stats: () => providerKeys.stats }),
      );
    }
  }

  /** Everything in the Prometheus text format: this application's metrics, then the process's. */
  async scrape(): Promise<Scrape> {
    const merged = Registry.merge([this.registry, processMetrics()]);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }

  onModuleDestroy(): void {
    this.subscription.unsubscribe();
  }
}
