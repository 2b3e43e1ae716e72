import { describe, expect, it } from '@jest/globals';
import { ChatGateway } from './chat.gateway.js';

describe('GatewayWsAdapter', () => {
  it('binds no disconnect hook, which is right only while ChatGateway has no handleDisconnect', () => {
    // If this fails, ChatGateway grew a handleDisconnect: restore bindClientDisconnect in the adapter.
    expect('handleDisconnect' in ChatGateway.prototype).toBe(false);
  });
});
