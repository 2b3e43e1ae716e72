import type { Migration, MigrationProvider } from 'kysely';
import * as conversations from './0001-conversations.js';

/**
 * Every migration, in order. Listed statically rather than read from a folder so that the built
 * service, the tests and a bundler all see exactly the same set.
 */
const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001-conversations': conversations,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve({ ...MIGRATIONS }),
};
