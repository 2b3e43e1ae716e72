export interface LlmMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

export interface LlmRequest {
  readonly messages: readonly LlmMessage[];
}

/** One streamed piece of a reply. */
export interface LlmDelta {
  readonly text: string;
}
