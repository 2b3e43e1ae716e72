import type { FleetQuotas } from '../fleet/fleet-quotas.js';
import { createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { ProviderKeys } from '../auth/provider-keys.service.js';
import { TokenVerifier } from '../auth/token-verifier.service.js';
import type { AppConfig } from '../config/app-config.js';
import { FatalInitError } from '../readiness/readiness.errors.js';
import { ReadinessService } from '../readiness/readiness.service.js';
import { ConnectionAdmission } from './connection-admission.js';
import { ConnectionRegistry } from './connection.registry.js';
import { FakeSocket } from './testing/fake-socket.js';

const SECRET = 'unit-test-secret-0123456789-abcdefghij';
const config = {
  auth: { jwtSecret: SECRET, usingDevelopmentSecret: false, userClaim: 'sub' },
  ws: {
    readyWaitMs: 1_000,
    heartbeatMs: 25_000,
    messagesPerSecond: 50,
    messageBurst: 100,
    maxBufferedBytes: 1 << 20,
    maxConnectionsPerUser: 2,
    allowedOrigins: ['https://chat.example.com'],
  },
} as unknown as AppConfig;

function token(sub: string, expiresIn = 60): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256' })}.${part({ sub, exp: Math.floor(Date.now() / 1000) + expiresIn })}`;
  return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
}

function handshake(headers: Record<string, string>): IncomingMessage {
  return { headers, url: '/ws' } as unknown as IncomingMessage;
}

/** Who may connect, and when: decided at the handshake, then by the readiness stream. */
describe('ConnectionAdmission', () => {
  let readiness: ReadinessService;
  let registry: ConnectionRegistry;
  let admission: ConnectionAdmission;
  let releaseModel: () => void;
  let failModel: (error: unknown) => void;

  beforeEach(() => {
    Logger.overrideLogger(false);
    jest.useFakeTimers();
    readiness = new ReadinessService({ dependencies: [{ name: 'model' }], startupTimeoutMs: 60_000 });
    readiness.track(
      'model',
      () =>
        new Promise<void>((resolve, reject) => {
          releaseModel = resolve;
          failModel = reject;
        }),
    );
    // A single instance: the fleet's shared counts are not used.
    const quotas = { enabled: false, source: () => undefined, sync: () => undefined } as unknown as FleetQuotas;
    registry = new ConnectionRegistry(config, quotas);
    const keys = new ProviderKeys(config, readiness);
    admission = new ConnectionAdmission(config, readiness, new TokenVerifier(config, keys), keys, registry, quotas);
  });

  afterEach(() => {
    readiness.onModuleDestroy();
    jest.useRealTimers();
  });

  const connect = (sub = 'alice', headers: Record<string, string> = {}): FakeSocket => {
    const socket = new FakeSocket();
    admission.admit(socket.ws, handshake({ authorization: `Bearer ${token(sub)}`, ...headers }));
    return socket;
  };
  const ready = async (): Promise<void> => {
    releaseModel();
    await jest.advanceTimersByTimeAsync(0);
  };

  it('refuses a missing, a bad or an expired token with one error frame and 1008, before anything else', () => {
    const missing = new FakeSocket();
    admission.admit(missing.ws, handshake({}));
    const forged = new FakeSocket();
    admission.admit(forged.ws, handshake({ authorization: `Bearer ${token('alice')}x` }));
    const expired = new FakeSocket();
    admission.admit(expired.ws, handshake({ authorization: `Bearer ${token('alice', -10)}` }));
    for (const [socket, code, reason] of [
      [missing, 'UNAUTHORIZED', 'unauthorized'],
      [forged, 'UNAUTHORIZED', 'unauthorized'],
      [expired, 'TOKEN_EXPIRED', 'token expired'],
    ] as const) {
      expect(socket.sent).toEqual([{ event: 'error', data: expect.objectContaining({ code, retryable: false }) }]);
      expect(socket.closedWith).toEqual({ code: 1008, reason });
    }
  });

  it('refuses a browser origin outside the allow-list, and lets a client without one in', async () => {
    const browser = connect('alice', { origin: 'https://evil.example.com' });
    expect(browser.sent[0]?.data).toMatchObject({ code: 'ORIGIN_NOT_ALLOWED' });
    expect(browser.closedWith?.code).toBe(1008);
    const cli = connect('alice');
    await ready();
    expect(cli.sent[0]?.event).toBe('connection_established');
  });

  it('holds a connection opened before ready, sending nothing, and releases it the moment the dependency is up', async () => {
    const held = connect();
    await jest.advanceTimersByTimeAsync(999);
    expect(held.sent).toEqual([]);
    await ready();
    expect(held.sent.map((frame) => frame.event)).toEqual(['connection_established']);
    expect(held.sent[0]?.data).toMatchObject({ userId: 'alice', protocolVersion: 1, heartbeatMs: 25_000 });
  });

  it('refuses a held connection with SERVICE_NOT_READY and 1013 when WS_READY_WAIT_MS runs out', async () => {
    const held = connect();
    await jest.advanceTimersByTimeAsync(1_000);
    expect(held.sent).toEqual([
      {
        event: 'error',
        data: expect.objectContaining({ code: 'SERVICE_NOT_READY', retryable: true, missing: ['model'] }),
      },
    ]);
    expect(held.closedWith?.code).toBe(1013);
  });

  it('refuses held connections at once when start-up fails, with the longer retry hint', async () => {
    const held = connect();
    failModel(new FatalInitError('model file missing'));
    await jest.advanceTimersByTimeAsync(0);
    expect(held.sent[0]?.data).toMatchObject({ code: 'SERVICE_NOT_READY', retryAfterMs: 5_000 });
    expect(held.closedWith?.code).toBe(1013);
  });

  it('counts a user’s connections from the handshake, held or not: one more is TOO_MANY_CONNECTIONS and 1008', async () => {
    const first = connect();
    connect();
    const third = connect();
    expect(third.sent[0]?.data).toMatchObject({ code: 'TOO_MANY_CONNECTIONS', retryable: false });
    expect(third.closedWith?.code).toBe(1008);
    expect(connect('bob').closedWith).toBeUndefined();

    first.emit('close', 1000);
    const fourth = connect();
    await ready();
    expect(fourth.sent[0]?.event).toBe('connection_established');
  });

  it('refuses new connections with SERVICE_SHUTTING_DOWN and 1012 while draining', async () => {
    await ready();
    readiness.beginDrain();
    const late = connect();
    expect(late.sent[0]?.data).toMatchObject({ code: 'SERVICE_SHUTTING_DOWN', retryable: true });
    expect(late.closedWith?.code).toBe(1012);
  });
});
