import { afterEach } from '@jest/globals';
import type { TestDatabase } from './databases.js';
import type { ServerProcess } from './server-process.js';
import type { TestClient } from './ws-client.js';

/**
 * What an e2e test starts (server processes, clients, a database), given back after each test:
 * clients closed, servers killed, the database dropped. Call once inside a `describe`.
 */
export function processFixture(): {
  readonly servers: ServerProcess[];
  readonly clients: TestClient[];
  db: TestDatabase | undefined;
} {
  const fixture = {
    servers: [] as ServerProcess[],
    clients: [] as TestClient[],
    db: undefined as TestDatabase | undefined,
  };
  afterEach(async () => {
    await Promise.all(fixture.clients.splice(0).map((client) => client.close()));
    await Promise.all(fixture.servers.splice(0).map((server) => server.stop()));
    await fixture.db?.drop();
    fixture.db = undefined;
  });
  return fixture;
}
