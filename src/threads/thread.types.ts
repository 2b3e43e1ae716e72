export interface Thread {
  readonly id: string;
  readonly ownerId: string;
  readonly title: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface Message {
  readonly id: string;
  readonly threadId: string;
  readonly role: 'user' | 'assistant';
  readonly content: string;
  readonly runId?: string;
  readonly createdAt: Date;
}

export type NewMessage = Omit<Message, 'id' | 'createdAt'>;
