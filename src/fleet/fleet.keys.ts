/**
 * Every Redis key and channel the service writes or reads, in one place. Keys of one run share the
 * hash tag `{run:<id>}` and keys of one user `{user:<id>}`, so every multi-key step lands on one
 * slot of a Redis Cluster; nothing spans two tags. All start with `REDIS_KEY_PREFIX` (default
 * `agw`), so one Redis can serve several deployments (and tests) side by side.
 *
 * | key / channel                      | type    | holds                                                   | bounded by                                   |
 * |------------------------------------|---------|---------------------------------------------------------|----------------------------------------------|
 * | `<p>:{run:<id>}:events`            | stream  | the run's events, entry id `<seq>-0`, field `f` = frame | MAXLEN ~RUN_STREAM_MAX_EVENTS; expires {@link RUN_STREAM_RETENTION_MS} after the run ends (and a run timeout after its last write) |
 * | `<p>:{run:<id>}:live`              | channel | each batch of new events, as a JSON array of frames     | pub/sub: nothing kept                         |
 * | `<p>:{user:<id>}:connections`      | hash    | instance id → that instance's connections of the user   | fields of dead instances dropped on use; expires after a day unused |
 * | `<p>:{user:<id>}:runs`             | hash    | instance id → that instance's runs of the user           | same                                          |
 * | `<p>:instance:<id>:control`        | channel | commands for one instance (`cancel`)                    | pub/sub: nothing kept                         |
 */
export class FleetKeys {
  constructor(private readonly prefix: string) {}

  runEvents(runId: string): string {
    return `${this.prefix}:{run:${runId}}:events`;
  }

  runChannel(runId: string): string {
    return `${this.prefix}:{run:${runId}}:live`;
  }

  userCounter(kind: UserCounterKind, userId: string): string {
    return `${this.prefix}:{user:${userId}}:${kind}`;
  }

  instanceControl(instanceId: string): string {
    return `${this.prefix}:instance:${instanceId}:control`;
  }

  /** Every key of this prefix (tests and operators clean up with it). */
  get pattern(): string {
    return `${this.prefix}:*`;
  }
}

export type UserCounterKind = 'connections' | 'runs';

/** A run's stream is kept this long after the run ended (followers then read PostgreSQL). */
export const RUN_STREAM_RETENTION_MS = 5 * 60_000;
/** A run's stream never holds more events than this (approximately: trimmed with `MAXLEN ~`). */
export const RUN_STREAM_MAX_EVENTS = 100_000;
/** A user's counter hash is dropped after this long without a change. */
export const USER_COUNTER_TTL_MS = 24 * 3_600_000;
