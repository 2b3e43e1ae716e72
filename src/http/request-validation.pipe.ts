import type { PipeTransform } from '@nestjs/common';
import type { z } from 'zod';
import { validationFailed } from '../errors/client-errors.js';

/** Validates a request's `data`; the first problem becomes `VALIDATION_FAILED` naming the field. */
export class RequestValidationPipe<T> implements PipeTransform<unknown, T> {
  constructor(
    private readonly schema: z.ZodType<T>,
    /** How the value itself is named in errors (a route parameter's name, say). */
    private readonly rootField = 'data',
  ) {}

  transform(value: unknown): T {
    const result = this.schema.safeParse(value);
    if (result.success) return result.data;
    const issue = result.error.issues[0];
    const field = issue === undefined || issue.path.length === 0 ? this.rootField : issue.path.join('.');
    const missing = issue?.code === 'invalid_type' && valueAt(value, issue.path) === undefined;
    const problem = missing ? 'is required' : (issue?.message ?? 'is invalid');
    throw validationFailed(field, problem);
  }
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
