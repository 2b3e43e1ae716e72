import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { discoverJwksUri, fetchKeySet, maxAgeOf } from './jwks-source.js';

/** A JWKS server whose next answer the test writes. */
let answer: { status?: number; body: string; headers?: Record<string, string> } = { body: '{}' };
let server: Server;
let base: string;

const publicJwk = (type: 'rsa' | 'ec' | 'ed25519', options: object = {}): Record<string, unknown> =>
  generateKeyPairSync(type as 'rsa', options as { modulusLength: number }).publicKey.export({ format: 'jwk' });
const rsa = publicJwk('rsa', { modulusLength: 2048 });
const p256 = publicJwk('ec', { namedCurve: 'P-256' });
const ed25519 = publicJwk('ed25519');

async function keySet(keys: unknown[], headers: Record<string, string> = {}): ReturnType<typeof fetchKeySet> {
  answer = { body: JSON.stringify({ keys }), headers };
  return fetchKeySet(`${base}/jwks`, new AbortController().signal);
}

describe('the JWKS source', () => {
  beforeAll(async () => {
    server = createServer((_request, response) => {
      response.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers });
      response.end(answer.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('imports RSA, P-256 and Ed25519 signature keys, with their kid, type, curve and alg', async () => {
    const set = await keySet([
      { ...rsa, kid: 'r', alg: 'RS256', use: 'sig' },
      { ...p256, kid: 'e' },
      { ...ed25519, kid: 'o', alg: 'EdDSA' },
    ]);
    expect(set.keys.map(({ kid, kty, crv, alg }) => ({ kid, kty, crv, alg }))).toEqual([
      { kid: 'r', kty: 'RSA', crv: undefined, alg: 'RS256' },
      { kid: 'e', kty: 'EC', crv: 'P-256', alg: undefined },
      { kid: 'o', kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' },
    ]);
    expect(set.keys.map((key) => key.key.asymmetricKeyType)).toEqual(['rsa', 'ec', 'ed25519']);
    expect(set.skipped).toEqual([]);
  });

  it('leaves out, and names, every key it must never verify with', async () => {
    const small = publicJwk('rsa', { modulusLength: 1024 });
    const set = await keySet([
      { ...rsa, kid: 'good' },
      { ...rsa, kid: 'enc', use: 'enc' },
      { kty: 'oct', kid: 'hmac', k: 'c2VjcmV0' },
      { ...rsa, kid: 'private', d: 'AQAB' },
      { ...small, kid: 'small' },
      { ...rsa, kid: 'mislabelled', alg: 'ES256' },
      { ...rsa, kid: 'hs', alg: 'HS256' },
      { kty: 'EC', crv: 'secp256k1', kid: 'k1', x: 'AA', y: 'AA' },
      { ...rsa, kid: 'wrap', key_ops: ['encrypt'] },
      { kty: 'RSA', kid: 'broken', n: '!!', e: 'AQAB' },
      'not a key',
    ]);
    expect(set.keys.map((key) => key.kid)).toEqual(['good']);
    expect(set.skipped).toEqual([
      expect.stringMatching(/kid enc.*use "enc"/u),
      expect.stringMatching(/kid hmac.*symmetric/u),
      expect.stringMatching(/kid private.*private key/u),
      expect.stringMatching(/kid small.*1024 bits/u),
      expect.stringMatching(/kid mislabelled.*alg ES256 is not a signature algorithm for this key/u),
      expect.stringMatching(/kid hs.*alg HS256/u),
      expect.stringMatching(/kid k1.*unsupported key type EC secp256k1/u),
      expect.stringMatching(/kid wrap.*key_ops/u),
      expect.stringMatching(/kid broken.*(not importable|0 bits)/u),
      expect.stringMatching(/key 10: not an object/u),
    ]);
  });

  it.each([
    ['an empty set', { body: '{"keys":[]}' }, /no usable signature key \(the set is empty\)/u],
    ['no keys array', { body: '{"issuer":"x"}' }, /not a JWKS/u],
    ['HTML', { body: '<html>' }, /not JSON/u],
    ['an array', { body: '[]' }, /not a JSON object/u],
    ['an error status', { status: 502, body: 'bad gateway' }, /HTTP 502/u],
    ['an answer over 512 KiB', { body: `{"keys":[],"pad":"${'x'.repeat(600_000)}"}` }, /larger than/u],
  ])('refuses %s, saying why', async (_, next, message) => {
    answer = next;
    await expect(fetchKeySet(`${base}/jwks`, new AbortController().signal)).rejects.toThrow(message);
  });

  it('reads how long the set may be cached', async () => {
    expect((await keySet([rsa], { 'cache-control': 'public, max-age=300, must-revalidate' })).maxAgeMs).toBe(300_000);
    expect((await keySet([rsa])).maxAgeMs).toBeUndefined();
    expect(maxAgeOf('no-store')).toBe(0);
    expect(maxAgeOf('private, no-cache')).toBe(0);
    expect(maxAgeOf('s-maxage=60')).toBeUndefined();
  });

  it("finds the JWKS through discovery and insists the document's issuer is JWT_ISSUER", async () => {
    answer = { body: JSON.stringify({ issuer: 'https://id.example.com/', jwks_uri: 'https://id.example.com/keys' }) };
    const signal = new AbortController().signal;
    await expect(discoverJwksUri(`${base}/`, 'https://id.example.com/', signal)).resolves.toBe(
      'https://id.example.com/keys',
    );
    await expect(discoverJwksUri(base, 'https://id.example.com', signal)).rejects.toMatchObject({
      name: 'FatalInitError',
    });
    answer = { body: JSON.stringify({ issuer: 'https://id.example.com/', jwks_uri: 'file:///etc/passwd' }) };
    await expect(discoverJwksUri(base, 'https://id.example.com/', signal)).rejects.toThrow(/no http\(s\) jwks_uri/u);
  });
});
