import type { INestApplication } from '@nestjs/common';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import { filter, firstValueFrom } from 'rxjs';
import { AppModule } from '../../src/app.module.js';
import { configureApp } from '../../src/app.setup.js';
import type { AppDependency } from '../../src/app.dependencies.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { loadConfig } from '../../src/config/load-config.js';
import { ReadinessService } from '../../src/readiness/readiness.service.js';
import { ReadinessGates } from '../../src/readiness/testing/readiness-gates.js';
import { CaptureLogger } from './capture-logger.js';
import { createTestDatabase, type TestDatabase } from './databases.js';
import { signToken, TEST_JWT_SECRET } from './tokens.js';
import { TestClient, type ConnectOptions } from './ws-client.js';

export interface TestAppOptions {
  /** Environment variables on top of the test defaults. */
  readonly env?: Record<string, string>;
  /** Dependencies whose initialisation waits for the test (see {@link ReadinessGates}). */
  readonly gated?: readonly AppDependency[];
  /** Resolve only once the service is ready (for tests that are not about start-up). */
  readonly ready?: boolean;
  /** Further DI overrides. */
  readonly override?: (builder: TestingModuleBuilder) => TestingModuleBuilder;
}

export interface TestApp {
  readonly app: INestApplication;
  readonly config: AppConfig;
  readonly url: string;
  readonly readiness: ReadinessService;
  readonly gates: ReadinessGates;
  readonly logs: CaptureLogger;
  connect(options?: ConnectOptions): TestClient;
  /** A client of user `sub`, resolved once it received `connection_established`. */
  connectAs(sub?: string): Promise<TestClient>;
  /** Resolves once the dependency is ready (how long the database takes depends on the engine). */
  dependencyReady(name: AppDependency): Promise<void>;
  close(): Promise<void>;
}

/**
 * The real application in a Nest testing module, configured exactly as `main.ts` does and
 * listening on a free loopback port.
 */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  // TEST_DATABASE_ENGINE=postgres runs every such app on its own PostgreSQL schema (CI does, to run
  // the whole integration suite on both engines); otherwise an in-memory SQLite database.
  const database: TestDatabase | undefined =
    options.env?.DATABASE_URL === undefined && process.env.TEST_DATABASE_ENGINE === 'postgres'
      ? await createTestDatabase('postgres')
      : undefined;
  const { config } = loadConfig({
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    JWT_SECRET: TEST_JWT_SECRET,
    DATABASE_URL: 'sqlite::memory:',
    ...database?.env,
    ...options.env,
  });
  const gates = new ReadinessGates(options.gated ?? []);
  let builder = gates.apply(Test.createTestingModule({ imports: [AppModule.forRoot(config)] }));
  if (options.override !== undefined) builder = options.override(builder);
  const logs = new CaptureLogger();
  const moduleRef = await builder.setLogger(logs).compile();
  const app = moduleRef.createNestApplication({ logger: logs });
  configureApp(app, config);
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  const readiness = app.get(ReadinessService);
  if (options.ready === true) {
    try {
      await readiness.whenReady(10_000);
    } catch (error) {
      // Nobody else holds this app: left running, its retries would keep Jest from ever exiting.
      await app.close();
      await database?.drop();
      throw error;
    }
  }
  const clients: TestClient[] = [];
  const connect = (connectOptions?: ConnectOptions): TestClient => {
    const client = new TestClient(url, connectOptions);
    clients.push(client);
    return client;
  };
  return {
    app,
    config,
    url,
    readiness,
    gates,
    logs,
    async dependencyReady(name: AppDependency): Promise<void> {
      await firstValueFrom(
        readiness.snapshot$.pipe(
          filter((snapshot) => snapshot.dependencies.some((dep) => dep.name === name && dep.state === 'ready')),
        ),
      );
    },
    connect,
    async connectAs(sub = 'alice'): Promise<TestClient> {
      const client = connect({ token: signToken({ sub }) });
      await client.waitFor('connection_established');
      return client;
    },
    async close(): Promise<void> {
      await Promise.all(clients.map((client) => client.close()));
      await app.close();
      await database?.drop();
    },
  };
}
