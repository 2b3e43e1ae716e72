import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

/** The asymmetric algorithms a test provider can sign with. */
export type ProviderAlgorithm = 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

export interface ProviderKey {
  readonly kid: string;
  readonly alg: ProviderAlgorithm;
  readonly privateKey: PrivateKey;
  readonly publicJwk: JWK;
}

export interface SignOptions {
  readonly alg?: ProviderAlgorithm;
  /** The key to sign with (default: the newest of `alg`; `alg` defaults to the first key's). */
  readonly kid?: string;
  /** Put no `kid` in the header. */
  readonly omitKid?: boolean;
  /** Header fields on top of `alg` and `kid` (`typ`, `crit`, a forged `kid`…). */
  readonly header?: Record<string, unknown>;
  /** Seconds from now; default 3600. */
  readonly expiresIn?: number;
}

/**
 * An identity provider on 127.0.0.1 for the tests and the benchmarks: keys generated at start, a
 * JWKS at `/jwks`, an OIDC discovery document at `/.well-known/openid-configuration`, tokens
 * signed with jose. It counts what it serves, can be taken down (503) and brought back, and can
 * rotate its keys.
 */
export class LocalIdentityProvider {
  readonly fetches = { jwks: 0, discovery: 0 };
  /** `Cache-Control` of the JWKS answer; unset: none. */
  cacheControl: string | undefined;
  private keys: ProviderKey[] = [];
  private available = true;
  private held: Array<() => void> | undefined;
  private readonly waiters: Array<{ count: number; resolve: () => void }> = [];

  private constructor(
    private readonly server: Server,
    readonly issuer: string,
  ) {}

  /** Starts a provider with one key per algorithm in `algorithms` (default RS256, ES256, EdDSA). */
  static async start(
    options: { algorithms?: readonly ProviderAlgorithm[]; audience?: string } = {},
  ): Promise<LocalIdentityProvider> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const provider = new LocalIdentityProvider(server, `http://127.0.0.1:${port}/realms/test`);
    server.on('request', (request: IncomingMessage, response: ServerResponse) =>
      provider.answer(request.url ?? '/', response),
    );
    for (const alg of options.algorithms ?? ['RS256', 'ES256', 'EdDSA']) await provider.addKey(alg);
    return provider;
  }

  /** `AUTH_JWKS_URL`. */
  get jwksUrl(): string {
    return `${this.issuer}/jwks`;
  }

  /** `AUTH_ISSUER_URL` (discovery at `<issuer>/.well-known/openid-configuration`). */
  get issuerUrl(): string {
    return this.issuer;
  }

  /** Environment for an app that trusts this provider through its JWKS URL. */
  env(audience = 'agent-gateway'): Record<string, string> {
    return { AUTH_JWKS_URL: this.jwksUrl, JWT_ISSUER: this.issuer, JWT_AUDIENCE: audience };
  }

  /** A new key, served from now on beside the others. */
  async addKey(alg: ProviderAlgorithm, kid = `${alg.toLowerCase()}-${this.keys.length + 1}`): Promise<ProviderKey> {
    const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
    const key = { kid, alg, privateKey, publicJwk };
    this.keys.push(key);
    return key;
  }

  /** The public JWK served for `kid`. */
  publicJwk(kid: string): JWK {
    const key = this.keys.find((candidate) => candidate.kid === kid);
    if (key === undefined) throw new Error(`identity provider: no key ${kid}`);
    return key.publicJwk;
  }

  /** Stops serving a key (a rotation's second half). */
  removeKey(kid: string): void {
    this.keys = this.keys.filter((key) => key.kid !== kid);
  }

  /** Down: every answer is 503. Up: served again. */
  setAvailable(available: boolean): void {
    this.available = available;
  }

  /** From now on JWKS answers wait; the returned function sends them all and stops holding. */
  holdJwks(): () => void {
    const held: Array<() => void> = [];
    this.held = held;
    return () => {
      this.held = undefined;
      for (const send of held) send();
    };
  }

  /** Resolves once the JWKS has been asked for `count` times in all. */
  async jwksServed(count: number): Promise<void> {
    if (this.fetches.jwks >= count) return;
    await new Promise<void>((resolve) => this.waiters.push({ count, resolve }));
  }

  /** A token with `claims` on top of iss, aud, sub `alice`, iat and exp (a claim set to undefined is left out). */
  async sign(claims: Record<string, unknown> = {}, options: SignOptions = {}): Promise<string> {
    const alg = options.alg ?? this.keys[0]?.alg;
    const key =
      options.kid === undefined
        ? this.keys.findLast((candidate) => candidate.alg === alg)
        : this.keys.find((candidate) => candidate.kid === options.kid);
    if (key === undefined) throw new Error(`identity provider: no ${options.kid ?? alg} key`);
    const now = Math.floor(Date.now() / 1000);
    const exp = now + (options.expiresIn ?? 3600);
    return new SignJWT({ iss: this.issuer, aud: 'agent-gateway', sub: 'alice', iat: now, exp, ...claims })
      .setProtectedHeader({ alg: key.alg, typ: 'JWT', ...(options.omitKid ? {} : { kid: key.kid }), ...options.header })
      .sign(key.privateKey);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(url: string, response: ServerResponse, counted = false): void {
    const path = new URL(url, this.issuer).pathname;
    if (path.endsWith('/.well-known/openid-configuration')) this.fetches.discovery += 1;
    if (path.endsWith('/jwks') && !counted) {
      this.fetches.jwks += 1;
      for (const waiter of this.waiters.filter((candidate) => candidate.count <= this.fetches.jwks)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
    if (this.held !== undefined && path.endsWith('/jwks')) {
      this.held.push(() => this.answer(url, response, true));
      return;
    }
    if (!this.available) {
      response.writeHead(503, { 'Content-Type': 'text/plain' }).end('down for maintenance');
      return;
    }
    if (path.endsWith('/.well-known/openid-configuration')) {
      this.json(response, {
        issuer: this.issuer,
        jwks_uri: this.jwksUrl,
        authorization_endpoint: `${this.issuer}/protocol/openid-connect/auth`,
        token_endpoint: `${this.issuer}/protocol/openid-connect/token`,
        id_token_signing_alg_values_supported: ['RS256', 'ES256', 'EdDSA'],
      });
      return;
    }
    if (path.endsWith('/jwks')) {
      // A provider also lists keys that are not for signatures (Keycloak's RSA-OAEP): skipped.
      const encryption = { kty: 'RSA', kid: 'enc-1', use: 'enc', alg: 'RSA-OAEP', n: 'AQAB', e: 'AQAB' };
      this.json(response, { keys: [...this.keys.map((key) => key.publicJwk), encryption] }, this.cacheControl);
      return;
    }
    response.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
  }

  private json(response: ServerResponse, body: unknown, cacheControl?: string): void {
    response
      .writeHead(200, {
        'Content-Type': 'application/json',
        ...(cacheControl === undefined ? {} : { 'Cache-Control': cacheControl }),
      })
      .end(JSON.stringify(body));
  }
}
