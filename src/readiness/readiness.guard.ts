import { type CanActivate, Injectable } from '@nestjs/common';
import { AppError } from '../errors/app-error.js';
import { ReadinessService } from './readiness.service.js';
import { missingDependencies } from './readiness.types.js';

const RETRY_AFTER_MS = 2_000;

/** Routes that need the service's dependencies answer `SERVICE_NOT_READY` (503, retryable) until it is ready. */
@Injectable()
export class ReadinessGuard implements CanActivate {
  constructor(private readonly readiness: ReadinessService) {}

  canActivate(): boolean {
    const snapshot = this.readiness.snapshot;
    if (snapshot.phase === 'ready') return true;
    if (snapshot.phase === 'draining') {
      throw new AppError('SERVICE_SHUTTING_DOWN', 'this instance is shutting down; retry', true, {
        retryAfterMs: 1_000,
      });
    }
    const missing = missingDependencies(snapshot);
    throw new AppError('SERVICE_NOT_READY', `service not ready (waiting for ${missing.join(', ')})`, true, {
      retryAfterMs: RETRY_AFTER_MS,
      missing,
    });
  }
}
