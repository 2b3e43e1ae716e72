import { type CanActivate, Injectable } from '@nestjs/common';
import { serviceNotReady, serviceShuttingDown } from '../errors/client-errors.js';
import { ReadinessService } from './readiness.service.js';
import { missingDependencies } from './readiness.types.js';

/** Routes that need the service's dependencies answer `SERVICE_NOT_READY` (503, retryable) until it is ready. */
@Injectable()
export class ReadinessGuard implements CanActivate {
  constructor(private readonly readiness: ReadinessService) {}

  canActivate(): boolean {
    const snapshot = this.readiness.snapshot;
    if (snapshot.phase === 'ready') return true;
    if (snapshot.phase === 'draining') {
      throw serviceShuttingDown();
    }
    throw serviceNotReady(missingDependencies(snapshot));
  }
}
