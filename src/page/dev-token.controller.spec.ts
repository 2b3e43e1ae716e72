import { describe, expect, it } from '@jest/globals';
import type { Request } from 'express';
import type { AppConfig } from '../config/app-config.js';
import { DevTokenController } from './dev-token.controller.js';

const from = (remoteAddress: string): Request => ({ socket: { remoteAddress } }) as unknown as Request;

describe('DevTokenController', () => {
  const controller = new DevTokenController({
    auth: { userClaim: 'sub', jwtSecret: 'unit-test-secret-0123456789-abcdefghij' },
  } as AppConfig);

  it.each(['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1'])(
    'serves a development token to %s',
    async (address) => {
      await expect(controller.issue(from(address), { userId: 'alice', ttlSeconds: 60 })).resolves.toMatchObject({
        userId: 'alice',
      });
    },
  );

  it.each(['192.0.2.10', '::ffff:192.0.2.10', '2001:db8::1', ''])(
    'refuses %s with FORBIDDEN: development tokens never leave this machine',
    async (address) => {
      await expect(controller.issue(from(address), { userId: 'alice', ttlSeconds: 60 })).rejects.toThrow(
        expect.objectContaining({ code: 'FORBIDDEN' }),
      );
    },
  );
});
