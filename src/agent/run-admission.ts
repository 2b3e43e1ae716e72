import { Injectable, type OnModuleInit } from '@nestjs/common';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { DatabaseService } from '../database/database.service.js';
import { storageUnavailable, tooManyRuns } from '../errors/client-errors.js';
import { FleetQuotas } from '../fleet/fleet-quotas.js';
import { RunLimiter, type RunTicket } from './run-limiter.js';

/**
 * Whether a run may start, and its place among the runs: this instance's limits and queue
 * (`RunLimiter`), the user's runs across the fleet (fleet mode), and the instance's lease (without
 * it, this instance looks dead to the others, which could interrupt a run started now).
 */
@Injectable()
export class RunAdmission implements OnModuleInit {
  private readonly limiter: RunLimiter;

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly quotas: FleetQuotas,
    private readonly database: DatabaseService,
  ) {
    this.limiter = new RunLimiter(config.agent);
  }

  onModuleInit(): void {
    this.quotas.source('runs', (userId) => this.limiter.runsOf(userId));
  }

  /** A lease lost refuses at once, before anything is read (`STORAGE_UNAVAILABLE`, retryable). */
  checkLease(): void {
    if (this.database.lease?.current.held === false) throw storageUnavailable({ what: 'the message' });
  }

  /** Takes a place, or throws `RATE_LIMITED` / `SERVER_BUSY`. Release the ticket exactly once. */
  async admit(ownerId: string): Promise<RunTicket> {
    const local = this.limiter.admit(ownerId);
    const max = this.config.agent.maxRunsPerUser;
    if (!(await this.quotas.reserve('runs', ownerId, this.limiter.runsOf(ownerId), max))) {
      local.release();
      throw tooManyRuns(max);
    }
    return {
      position: local.position,
      granted: local.granted,
      release: () => {
        local.release();
        this.quotas.sync('runs', ownerId);
      },
    };
  }
}
