import { z } from 'zod';
import type { AgentRequest, PingRequest } from '../protocol/events.js';

const requestId = z.string().min(1, 'must not be empty').max(128, 'must be at most 128 characters');

export const agentRequestSchema = z.object({
  requestId,
  message: z.string().refine((text) => text.trim().length > 0, 'must not be empty'),
  threadId: z.string().min(1, 'must not be empty').max(128).optional(),
}) satisfies z.ZodType<AgentRequest>;

export const pingSchema = z.object({ requestId: requestId.optional() }) satisfies z.ZodType<PingRequest>;
