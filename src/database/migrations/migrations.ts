import type { Migration, MigrationProvider } from 'kysely';

/**
 * Every migration, in order. Listed statically rather than read from a folder so that the built
 * service, the tests and a bundler all see exactly the same set; imported only when migrating.
 */
export const migrationProvider: MigrationProvider = {
  getMigrations: async (): Promise<Record<string, Migration>> => ({
    '0001-conversations': await import('./0001-conversations.js'),
    '0002-fleet': await import('./0002-fleet.js'),
  }),
};
