import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module.js';
import { FleetBus } from './fleet-bus.service.js';
import { FleetQuotas } from './fleet-quotas.js';
import { InstanceControl } from './instance-control.js';
import { RunStreams } from './run-streams.js';

/**
 * Fleet mode (`REDIS_URL`): what the replicas share while runs are live. Without `REDIS_URL` every
 * provider here is present but inert, so its users need no branches of their own beyond `enabled`.
 */
@Module({
  imports: [DatabaseModule],
  providers: [FleetBus, FleetQuotas, InstanceControl, RunStreams],
  exports: [FleetBus, FleetQuotas, InstanceControl, RunStreams],
})
export class FleetModule {}
