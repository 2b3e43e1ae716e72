import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { type Observable, Subject } from 'rxjs';
import { FleetBus } from './fleet-bus.service.js';

/** What one instance may ask another to do: cancel a run, or settle its call waiting for approval. */
export type ControlCommand =
  | { readonly type: 'cancel'; readonly runId: string; readonly ownerId: string }
  | {
      readonly type: 'approval';
      readonly runId: string;
      readonly ownerId: string;
      readonly toolCallId: string;
      readonly approved: boolean;
      readonly reason?: string;
    };

/**
 * Commands between instances, over one channel per instance: `agent_cancel` and `tool_approval`
 * received by one instance for a run executing on another are sent here. At most once (pub/sub):
 * for a cancel the sender also records the request in PostgreSQL, which the executing instance
 * reads while the bus is down; an approval that reaches no instance is reported to its sender.
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
    const value = JSON.parse(message) as Record<string, unknown>;
    const { type, runId, ownerId } = value;
    if (typeof runId !== 'string' || typeof ownerId !== 'string') return undefined;
    if (type === 'cancel') return { type, runId, ownerId };
    const { toolCallId, approved, reason } = value;
    if (type !== 'approval' || typeof toolCallId !== 'string' || typeof approved !== 'boolean') return undefined;
    return typeof reason === 'string'
      ? { type, runId, ownerId, toolCallId, approved, reason }
      : { type, runId, ownerId, toolCallId, approved };
  } catch {
    return undefined;
  }
}
