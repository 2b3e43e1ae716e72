import * as z from 'zod';
import { isId } from '../database/ids.js';
import { isRequestId } from './frame.codec.js';
import {
  type AgentCancelRequest,
  type AgentRequest,
  MAX_REQUEST_ID_LENGTH,
  MAX_SEQ,
  type PingRequest,
  type ResumeRequest,
  type ThreadHistoryRequest,
  type ThreadListRequest,
  type ToolApprovalRequest,
} from '../protocol/events.js';

const requestId = z
  .string()
  .min(1, 'must not be empty')
  .max(MAX_REQUEST_ID_LENGTH, `must be at most ${MAX_REQUEST_ID_LENGTH} characters`)
  .refine(isRequestId, 'must be well-formed Unicode without control characters');
/** Ids are UUIDs; a malformed one is a `VALIDATION_FAILED`, never a lookup. */
const id = z.string().refine(isId, 'must be a UUID as returned by the server');
const limit = (max: number) => z.number().int('must be a whole number').min(1).max(max).optional();

/** A character that shows: not whitespace, not a format or control character, not default-ignorable. */
const VISIBLE = /[^\p{White_Space}\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}]/u;

/**
 * What a user may say: something visible (not only spaces, zero-width or other invisible
 * characters), well-formed Unicode (a lone surrogate cannot be stored as UTF-8) and no NUL
 * (PostgreSQL text cannot hold it). The length limit is configuration, checked by the gateway.
 */
const userText = z
  .string()
  .refine((text) => VISIBLE.test(text), 'must not be empty or made only of invisible characters')
  .refine((text) => text.isWellFormed(), 'must be well-formed Unicode (no lone surrogates)')
  .refine((text) => !text.includes('\u0000'), 'must not contain NUL characters');

export const agentRequestSchema = z.object({
  requestId,
  message: userText,
  threadId: id.optional(),
}) satisfies z.ZodType<AgentRequest>;

export const agentCancelSchema = z.object({
  requestId: requestId.optional(),
  runId: id,
}) satisfies z.ZodType<AgentCancelRequest>;

/** Longest `reason` of a `tool_approval` (the model hears it). */
const MAX_APPROVAL_REASON_CHARS = 1000;

export const toolApprovalSchema = z.object({
  requestId: requestId.optional(),
  runId: id,
  // The model's own id for the call (`call_…` from OpenAI): any short, printable string.
  toolCallId: requestId,
  approved: z.boolean(),
  reason: userText
    .refine(
      (text) => text.length <= MAX_APPROVAL_REASON_CHARS,
      `must be at most ${MAX_APPROVAL_REASON_CHARS} characters`,
    )
    .optional(),
}) satisfies z.ZodType<ToolApprovalRequest>;

export const resumeSchema = z.object({
  requestId: requestId.optional(),
  runId: id,
  afterSeq: z.number().int('must be a whole number').min(0).max(MAX_SEQ, `must be at most ${MAX_SEQ}`),
}) satisfies z.ZodType<ResumeRequest>;

export const threadListSchema = z.object({
  requestId,
  limit: limit(100),
  cursor: z.string().min(1).max(200).optional(),
}) satisfies z.ZodType<ThreadListRequest>;

export const threadHistorySchema = z.object({
  requestId,
  threadId: id,
  before: id.optional(),
  limit: limit(200),
}) satisfies z.ZodType<ThreadHistoryRequest>;

export const pingSchema = z.object({ requestId: requestId.optional() }) satisfies z.ZodType<PingRequest>;
