import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import type { Database, RunEventsTable } from '../database/database.types.js';
import type { StoredRunEvent, ToolStep } from './thread.types.js';

/** At most this many rows per INSERT (SQLite caps the number of bound variables). */
const ROWS_PER_INSERT = 500;
const DELTA = 'agent_message_delta';
const THINKING = 'agent_thinking';
/** A refused call has no `tool_executing`: its step's arguments come from `tool_approval_required`. */
const TOOL_EVENTS = ['tool_approval_required', 'tool_executing', 'tool_completed', 'tool_failed'];
/**
 * The stored form of consecutive `agent_message_delta` events of one run: one row, keyed by the
 * last one's `seq`, holding every delta's text. A streamed answer is hundreds of deltas of a word
 * each; a row per delta made storage the cost of streaming (see docs/benchmarks.md). Never sent:
 * {@link RunEventRepository.listAfter} gives the deltas back one by one, exactly as they were sent.
 */
const DELTA_RUN = 'agent_message_delta_run';
/**
 * The same for consecutive `agent_thinking` events with `text` of one run and one `step`: a
 * reasoning model streams its reasoning as finely as its answer. The step's first
 * `agent_thinking` (no `text`) stays a row of its own.
 */
const THINKING_RUN = 'agent_thinking_run';
/**
 * The keys, in order, of the events a merged row rebuilds: only an event with exactly these is
 * merged, so that a replay is the same JSON, key order included, as what was sent live.
 */
const DELTA_KEYS = ['text', 'runId', 'requestId', 'seq'] as const;
const THINKING_KEYS = ['step', 'text', 'runId', 'requestId', 'seq'] as const;

interface DeltaRunPayload {
  readonly runId: string;
  readonly requestId: string;
  readonly firstSeq: number;
  readonly texts: readonly string[];
}

interface ThinkingRunPayload extends DeltaRunPayload {
  readonly step: number;
}

@Injectable()
export class RunEventRepository {
  constructor(private readonly database: DatabaseService) {}

  /** Stores events of one or more runs; consecutive deltas (or reasoning pieces of one step) of a run become one row. */
  async insertMany(events: readonly StoredRunEvent[], at: Date, db: Database = this.database.db): Promise<void> {
    const rows = toRows(events, at.getTime());
    for (let index = 0; index < rows.length; index += ROWS_PER_INSERT) {
      await db
        .insertInto('run_events')
        .values(rows.slice(index, index + ROWS_PER_INSERT))
        .execute();
    }
  }

  /** The `seq` of the run's last stored event (0: none). Stored events are always a prefix of the run's. */
  async lastSeq(runId: string): Promise<number> {
    const row = await this.database.db
      .selectFrom('run_events')
      .select((eb) => eb.fn.max('seq').as('last'))
      .where('run_id', '=', runId)
      .executeTakeFirst();
    return Number(row?.last ?? 0);
  }

  /** The run's last stored event (a merged row gives its last delta or reasoning piece). One indexed read. */
  async last(runId: string): Promise<StoredRunEvent | undefined> {
    const row = await this.database.db
      .selectFrom('run_events')
      .select(['run_id', 'seq', 'event', 'payload'])
      .where('run_id', '=', runId)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row === undefined ? undefined : eventsOf(row, Number(row.seq) - 1).at(-1);
  }

  /** The tool calls of these runs, per run, in call order (for history: what the live view showed). */
  async toolSteps(runIds: readonly string[]): Promise<Map<string, ToolStep[]>> {
    const steps = new Map<string, Array<{ -readonly [K in keyof ToolStep]: ToolStep[K] }>>();
    if (runIds.length === 0) return steps;
    const rows = await this.database.db
      .selectFrom('run_events')
      .select(['run_id', 'seq', 'event', 'payload'])
      .where('run_id', 'in', runIds)
      .where('event', 'in', TOOL_EVENTS)
      .orderBy('run_id')
      .orderBy('seq')
      .execute();
    for (const row of rows) {
      const payload = JSON.parse(row.payload) as Record<string, unknown>;
      const data = (
        row.event === 'tool_approval_required'
          ? { callId: payload.toolCallId, tool: payload.name, args: payload.arguments }
          : payload
      ) as { callId: string; tool: string } & Partial<ToolStep>;
      const ofRun = steps.get(row.run_id) ?? [];
      steps.set(row.run_id, ofRun);
      let step = ofRun.find((candidate) => candidate.callId === data.callId);
      if (step === undefined) {
        step = { callId: data.callId, tool: data.tool, args: data.args };
        ofRun.push(step);
      }
      if (row.event === 'tool_completed') step.result = data.result;
      else if (row.event === 'tool_failed') step.error = data.error;
    }
    return steps;
  }

  /** The run's events with `seq > afterSeq`, in order, one per event sent (at most `maxRows` rows' worth). */
  async listAfter(runId: string, afterSeq: number, maxRows?: number): Promise<StoredRunEvent[]> {
    let query = this.database.db
      .selectFrom('run_events')
      .select(['run_id', 'seq', 'event', 'payload'])
      .where('run_id', '=', runId)
      .where('seq', '>', afterSeq)
      .orderBy('seq');
    if (maxRows !== undefined) query = query.limit(maxRows);
    return (await query.execute()).flatMap((row) => eventsOf(row, afterSeq));
  }
}

/** The events a row holds with `seq > afterSeq`: itself, or the events of a merged row one by one. */
function eventsOf(
  row: Pick<RunEventsTable, 'run_id' | 'seq' | 'event' | 'payload'>,
  afterSeq: number,
): StoredRunEvent[] {
  const data = JSON.parse(row.payload) as Record<string, unknown>;
  if (row.event !== DELTA_RUN && row.event !== THINKING_RUN) {
    return [{ runId: row.run_id, seq: Number(row.seq), event: row.event, data }];
  }
  const { runId, requestId, firstSeq, texts } = data as unknown as DeltaRunPayload;
  const { step } = data as unknown as ThinkingRunPayload;
  const events: StoredRunEvent[] = [];
  texts.forEach((text, index) => {
    const seq = firstSeq + index;
    if (seq <= afterSeq) return;
    // Built with the keys in the order they were sent (DELTA_KEYS, THINKING_KEYS).
    events.push(
      row.event === DELTA_RUN
        ? { runId: row.run_id, seq, event: DELTA, data: { text, runId, requestId, seq } }
        : { runId: row.run_id, seq, event: THINKING, data: { step, text, runId, requestId, seq } },
    );
  });
  return events;
}

/**
 * One row per event, except that consecutive deltas of the same run share one, and so do
 * consecutive reasoning pieces of the same run and step.
 */
function toRows(events: readonly StoredRunEvent[], createdAt: number): RunEventsTable[] {
  const rows: RunEventsTable[] = [];
  let group: StoredRunEvent[] = [];
  let groupKind: MergeKind | undefined;
  const flush = (): void => {
    const [first] = group;
    if (first === undefined) return;
    const last = group.at(-1) ?? first;
    if (group.length === 1) {
      rows.push(rowOf(first, createdAt));
    } else {
      const merged: DeltaRunPayload = {
        runId: first.runId,
        requestId: String(first.data.requestId),
        firstSeq: first.seq,
        texts: group.map((event) => String(event.data.text)),
      };
      const payload: DeltaRunPayload | ThinkingRunPayload =
        groupKind === 'delta' ? merged : { ...merged, step: Number(first.data.step) };
      rows.push({
        run_id: first.runId,
        seq: last.seq,
        event: groupKind === 'delta' ? DELTA_RUN : THINKING_RUN,
        payload: JSON.stringify(payload),
        created_at: createdAt,
      });
    }
    group = [];
    groupKind = undefined;
  };
  for (const event of events) {
    const kind = mergeKind(event);
    const previous = group.at(-1);
    const continues =
      kind !== undefined &&
      (previous === undefined ||
        (kind === groupKind &&
          previous.runId === event.runId &&
          previous.seq + 1 === event.seq &&
          (kind === 'delta' || previous.data.step === event.data.step)));
    if (!continues) flush();
    if (kind === undefined) {
      rows.push(rowOf(event, createdAt));
    } else {
      group.push(event);
      groupKind = kind;
    }
  }
  flush();
  return rows;
}

type MergeKind = 'delta' | 'thinking';

/**
 * Whether an event can share a row, and with which: a delta, or a reasoning piece, with nothing
 * but its text (and step) and the run's fields, which {@link eventsOf} rebuilds exactly.
 */
function mergeKind(event: StoredRunEvent): MergeKind | undefined {
  const { data } = event;
  if (typeof data.text !== 'string' || typeof data.requestId !== 'string') return undefined;
  if (data.runId !== event.runId || data.seq !== event.seq) return undefined;
  if (event.event === DELTA) return hasKeys(data, DELTA_KEYS) ? 'delta' : undefined;
  if (event.event === THINKING && Number.isSafeInteger(data.step)) {
    return hasKeys(data, THINKING_KEYS) ? 'thinking' : undefined;
  }
  return undefined;
}

/** Whether `data` has exactly these own keys, in this order (no array built: this runs per delta). */
function hasKeys(data: Record<string, unknown>, keys: readonly string[]): boolean {
  let index = 0;
  for (const key in data) {
    if (!Object.hasOwn(data, key)) continue;
    if (keys[index] !== key) return false;
    index += 1;
  }
  return index === keys.length;
}

function rowOf(event: StoredRunEvent, createdAt: number): RunEventsTable {
  return {
    run_id: event.runId,
    seq: event.seq,
    event: event.event,
    payload: JSON.stringify(event.data),
    created_at: createdAt,
  };
}
