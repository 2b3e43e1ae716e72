import type { IncomingMessage } from 'node:http';
import { Injectable, Logger } from '@nestjs/common';
import { first, of, timeout } from 'rxjs';
import type { WebSocket } from 'ws';
import { extractBearerToken } from '../auth/bearer-token.js';
import { ProviderKeys } from '../auth/provider-keys.service.js';
import { type Principal, TokenVerifier } from '../auth/token-verifier.service.js';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { AppError } from '../errors/app-error.js';
import {
  internalError,
  originNotAllowed,
  serviceNotReady,
  serviceShuttingDown,
  tooManyConnections,
} from '../errors/client-errors.js';
import { CloseCode } from '../protocol/close-codes.js';
import { FleetQuotas } from '../fleet/fleet-quotas.js';
import { PROTOCOL_VERSION } from '../protocol/events.js';
import { ReadinessService } from '../readiness/readiness.service.js';
import { missingDependencies, type ReadinessSnapshot } from '../readiness/readiness.types.js';
import { ConnectionRegistry } from './connection.registry.js';
import type { WsConnection } from './ws-connection.js';

/**
 * Who may connect to `/ws`, and when. Decided synchronously at the handshake (origin, token, the
 * user's connections) and then by the readiness stream: a connection is released the instant
 * readiness flips, or refused with 1013 when `WS_READY_WAIT_MS` runs out; while draining it is
 * refused with 1012. Until then its frames are held, not handled. Every refusal is one `error`
 * frame with its code, then the close.
 */
@Injectable()
export class ConnectionAdmission {
  private readonly logger = new Logger('Gateway');

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly readiness: ReadinessService,
    private readonly tokens: TokenVerifier,
    private readonly providerKeys: ProviderKeys,
    private readonly connections: ConnectionRegistry,
    private readonly quotas: FleetQuotas,
  ) {
    quotas.source('connections', (userId) => connections.openOf(userId));
  }

  /**
   * Registers the socket's connection and decides about it. Synchronous on purpose (Nest does not
   * await `handleConnection`), and never throws: an error escaping here would end Nest's connection
   * stream for every later client.
   */
  admit(socket: WebSocket, request: IncomingMessage): WsConnection {
    const connection = this.connections.open(socket);
    // One wait for the whole admission: keys, then readiness, never more than WS_READY_WAIT_MS in all.
    const deadline = performance.now() + this.config.ws.readyWaitMs;
    try {
      try {
        this.checkOrigin(request);
      } catch (error) {
        this.refuseUnauthenticated(connection, error);
        return connection;
      }
      const token = extractBearerToken(request);
      if (this.providerKeys.ready) this.authenticate(connection, token, deadline);
      else this.authenticateWithKeys(connection, token, deadline);
    } catch (error) {
      // Never rethrow: an error escaping here would end Nest's connection stream for every later client.
      this.refuseOnBug(connection, error);
    }
    return connection;
  }

  /**
   * Checks the token: synchronously, except for a token naming a key the provider's set does not
   * hold, which is held while the set is refetched (a rotation), then accepted or refused.
   */
  private authenticate(connection: WsConnection, token: string | undefined, deadline: number): void {
    let verified: Principal | Promise<Principal>;
    try {
      verified = this.tokens.authenticate(token);
    } catch (error) {
      this.refuseUnauthenticated(connection, error);
      return;
    }
    if (!(verified instanceof Promise)) {
      this.admitUser(connection, verified.userId, deadline);
      return;
    }
    verified
      .then(
        (principal) => {
          if (connection.phase === 'held') this.admitUser(connection, principal.userId, deadline);
        },
        (error: unknown) => {
          if (connection.phase === 'held') this.refuseUnauthenticated(connection, error);
        },
      )
      .catch((error: unknown) => this.refuseOnBug(connection, error));
  }

  /**
   * The identity provider's keys are not held yet (start-up): no token can be checked, so the
   * connection is held until they are, as it would be for readiness, and refused with 1013 if they
   * do not come in time (or the start-up fails, or the instance drains).
   */
  private authenticateWithKeys(connection: WsConnection, token: string | undefined, deadline: number): void {
    const settle = (snapshot: ReadinessSnapshot): void => {
      try {
        const live = snapshot.phase === 'starting' || snapshot.phase === 'ready';
        if (this.providerKeys.ready && live) this.authenticate(connection, token, deadline);
        else this.decide(connection, undefined, snapshot);
      } catch (error) {
        this.refuseOnBug(connection, error);
      }
    };
    connection.follow(
      this.readiness.snapshot$
        .pipe(
          first((snapshot) => snapshot.phase !== 'starting' || this.providerKeys.ready, undefined),
          timeout({ first: Math.max(0, deadline - performance.now()), with: () => of(undefined) }),
        )
        .subscribe({
          next: (settled) => settle(settled ?? this.readiness.snapshot),
          error: (error: unknown) => this.refuseOnBug(connection, error),
        }),
    );
  }

  /** A refused origin or token: one `error` frame with its code, then 1008 (1013 while the keys are missing). */
  private refuseUnauthenticated(connection: WsConnection, error: unknown): void {
    if (!(error instanceof AppError)) throw error;
    if (error.code === 'SERVICE_NOT_READY') {
      connection.refuse(error, CloseCode.TRY_AGAIN_LATER, 'service not ready, retry later');
      return;
    }
    const reason = error.code === 'TOKEN_EXPIRED' ? 'token expired' : 'unauthorized';
    connection.refuse(error, CloseCode.POLICY_VIOLATION, reason);
  }

  private admitUser(connection: WsConnection, userId: string, deadline: number): void {
    // Counted from the handshake, held or not: one token cannot park more sockets than this.
    if (this.connections.openOf(userId) >= this.config.ws.maxConnectionsPerUser) {
      connection.refuse(
        tooManyConnections(this.config.ws.maxConnectionsPerUser),
        CloseCode.POLICY_VIOLATION,
        'too many connections',
      );
      return;
    }
    this.connections.authenticated(connection, userId);
    if (this.quotas.enabled) this.admitInFleet(connection, userId, deadline);
    else this.admitWhenReady(connection, userId, deadline);
  }

  /**
   * Fleet mode: the user's connections on every live instance count. The connection is held (its
   * frames kept) during the check, which falls back to this instance's count if Redis is down.
   */
  private admitInFleet(connection: WsConnection, userId: string, deadline: number): void {
    const max = this.config.ws.maxConnectionsPerUser;
    this.quotas.reserve('connections', userId, this.connections.openOf(userId), max).then(
      (admitted) => {
        if (connection.phase !== 'held') return;
        if (admitted) this.admitWhenReady(connection, userId, deadline);
        else connection.refuse(tooManyConnections(max), CloseCode.POLICY_VIOLATION, 'too many connections');
      },
      (error: unknown) => this.refuseOnBug(connection, error),
    );
  }

  private admitWhenReady(connection: WsConnection, userId: string, deadline: number): void {
    // Already decided (ready, draining, failed): admitted here and now, before any frame is read.
    const current = this.readiness.snapshot;
    if (current.phase !== 'starting') {
      this.decide(connection, userId, current);
      return;
    }
    // Held: released by the readiness stream the instant it flips, or refused when the wait runs out.
    // Whatever goes wrong while releasing or refusing this one connection stays with it: the
    // subscriber never throws into the readiness stream (which would end the process).
    const settle = (snapshot: ReadinessSnapshot): void => {
      try {
        this.decide(connection, userId, snapshot);
      } catch (error) {
        this.refuseOnBug(connection, error);
      }
    };
    connection.follow(
      this.readiness.snapshot$
        .pipe(
          first((snapshot) => snapshot.phase !== 'starting', undefined),
          timeout({ first: Math.max(0, deadline - performance.now()), with: () => of(undefined) }),
        )
        .subscribe({
          next: (settled) => settle(settled ?? this.readiness.snapshot),
          error: (error: unknown) => this.refuseOnBug(connection, error),
        }),
    );
  }

  /** `userId` undefined: the connection is not authenticated yet, so it can only be refused. */
  private decide(connection: WsConnection, userId: string | undefined, snapshot: ReadinessSnapshot): void {
    switch (snapshot.phase) {
      case 'ready':
        if (userId === undefined) throw new Error('admission: establishing an unauthenticated connection');
        connection.establish(userId, {
          protocolVersion: PROTOCOL_VERSION,
          heartbeatMs: this.config.ws.heartbeatMs,
          serverTime: new Date().toISOString(),
        });
        return;
      case 'starting':
      case 'failed': {
        const missing = missingDependencies(snapshot);
        const error =
          snapshot.phase === 'failed'
            ? serviceNotReady(missing, { failed: true })
            : serviceNotReady(missing, { waitedMs: this.config.ws.readyWaitMs });
        connection.refuse(error, CloseCode.TRY_AGAIN_LATER, 'service not ready, retry later');
        return;
      }
      case 'draining':
        connection.refuse(serviceShuttingDown(), CloseCode.SERVICE_RESTART, 'service shutting down');
        return;
      default: {
        const exhaustive: never = snapshot.phase;
        return exhaustive;
      }
    }
  }

  /**
   * The one place the gateway closes with 1011: admitting, releasing or refusing this connection
   * crashed, which is a bug. It ends this connection only; if even the refusal fails, the socket is
   * cut. Nothing is rethrown.
   */
  private refuseOnBug(connection: WsConnection, error: unknown): void {
    const failure = internalError(this.logger, `admission failed (connection ${connection.id})`, error);
    try {
      connection.refuse(failure, CloseCode.INTERNAL_ERROR, 'internal error');
    } catch (refusal) {
      this.logger.error(
        `refusing connection ${connection.id} failed too (correlationId ${String(failure.details.correlationId)}): ${String(refusal)}`,
      );
      connection.socket.terminate();
    }
  }

  private checkOrigin(request: IncomingMessage): void {
    const allowed = this.config.ws.allowedOrigins;
    const origin = request.headers.origin;
    // Non-browser clients send no Origin; the allow-list protects browsers from cross-site use.
    if (allowed.length === 0 || origin === undefined || allowed.includes(origin)) return;
    throw originNotAllowed(origin);
  }
}
