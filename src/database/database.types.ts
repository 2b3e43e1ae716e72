import type { Kysely } from 'kysely';
import type { RunStatus } from '../protocol/events.js';

/**
 * The tables, as Kysely sees them. Timestamps are epoch milliseconds (`bigint`, read back as
 * numbers on both engines) and ids are UUIDv7, so ordering by id is ordering by creation time.
 */
export interface ThreadsTable {
  id: string;
  owner_id: string;
  title: string;
  created_at: number;
  updated_at: number;
}

export interface MessagesTable {
  id: string;
  thread_id: string;
  role: 'user' | 'assistant';
  content: string;
  run_id: string | null;
  created_at: number;
}

export interface RunsTable {
  id: string;
  thread_id: string;
  owner_id: string;
  request_id: string;
  /** The process executing the run (alive while its lease is: see `instance-lease.ts`). */
  instance_id: string;
  status: RunStatus;
  /** The assistant's message, once the run completed. */
  message_id: string | null;
  error_code: string | null;
  error_message: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  /** Set by `agent_cancel` on another replica; the executing replica reads it while the bus is down. */
  cancel_requested_at: number | null;
}

/** A live instance's lease (PostgreSQL): alive while `expires_at`, on the database's clock, is ahead. */
export interface InstancesTable {
  id: string;
  host: string;
  /** 1 when the instance runs in fleet mode (`REDIS_URL` set). */
  fleet: number;
  started_at: number;
  expires_at: number;
}

export interface RunEventsTable {
  run_id: string;
  seq: number;
  event: string;
  /** The event's data as JSON text. */
  payload: string;
  created_at: number;
}

export interface DatabaseSchema {
  threads: ThreadsTable;
  messages: MessagesTable;
  runs: RunsTable;
  run_events: RunEventsTable;
  instances: InstancesTable;
}

export type Database = Kysely<DatabaseSchema>;
export type DatabaseEngine = 'sqlite' | 'postgres';

/** An open database of either engine (`database.connect.ts` opens it). */
export interface Connection {
  readonly engine: DatabaseEngine;
  readonly db: Database;
  /**
   * Closes every connection. Queries still running after `graceMs` (an initialisation waiting on a
   * lock, say) are cut: their connections are closed under them, so nothing held on the server
   * (advisory locks, an open transaction) outlives the process's intent to stop.
   */
  close(graceMs: number): Promise<void>;
}
