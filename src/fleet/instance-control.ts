import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { type Observable, Subject } from 'rxjs';
import { FleetBus } from './fleet-bus.service.js';

/** What one instance may ask another to do. */
export type ControlCommand = { readonly type: 'cancel'; readonly runId: string; readonly ownerId: string };

/**
 * Commands between instances, over one channel per instance: `agent_cancel` received by one
 * instance for a run executing on another is sent here. At most once (pub/sub): the sender also
 * records the request in PostgreSQL, which the executing instance reads while the bus is down.
 */
@Injectable()
export class InstanceControl implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Fleet');
  private readonly commands = new Subject<ControlCommand>();
  /** Commands for this instance, from any instance. */
  readonly commands$: Observable<ControlCommand> = this.commands.asObservable();
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly bus: FleetBus) {}

  onApplicationBootstrap(): void {
    if (!this.bus.enabled) return;
    this.unsubscribe = this.bus.subscribe(this.bus.keys.instanceControl(this.bus.instanceId), (message) => {
      const command = parseCommand(message);
      if (command === undefined) this.logger.warn('ignored a malformed control command');
      else this.commands.next(command);
    });
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
    this.commands.complete();
  }

  /** Sends `command` to `instanceId`; false if no instance listens (or Redis is down). */
  async send(instanceId: string, command: ControlCommand): Promise<boolean> {
    if (!this.bus.enabled) return false;
    try {
      const receivers = await this.bus.run((redis) =>
        redis.publish(this.bus.keys.instanceControl(instanceId), JSON.stringify(command)),
      );
      return receivers > 0;
    } catch {
      return false;
    }
  }
}

function parseCommand(message: string): ControlCommand | undefined {
  try {
    const value = JSON.parse(message) as Partial<ControlCommand>;
    return value.type === 'cancel' && typeof value.runId === 'string' && typeof value.ownerId === 'string'
      ? { type: 'cancel', runId: value.runId, ownerId: value.ownerId }
      : undefined;
  } catch {
    return undefined;
  }
}
