import { describe, expect, it } from '@jest/globals';
import { decodeFrame } from './frame.codec.js';

const text = (value: string): Buffer => Buffer.from(value, 'utf8');

describe('decodeFrame', () => {
  it('decodes a request and picks out its requestId', () => {
    expect(decodeFrame(text('{"event":"agent_request","data":{"requestId":"r1","message":"hi"}}'), false)).toEqual({
      kind: 'request',
      event: 'agent_request',
      data: { requestId: 'r1', message: 'hi' },
      requestId: 'r1',
    });
  });

  it('treats a missing data as an empty object', () => {
    expect(decodeFrame(text('{"event":"ping"}'), false)).toEqual({ kind: 'request', event: 'ping', data: {} });
  });

  it.each([
    ['binary', Buffer.from('{}'), true, 'BAD_REQUEST'],
    ['invalid JSON', text('{'), false, 'BAD_REQUEST'],
    ['deep nesting', text('['.repeat(200_000) + ']'.repeat(200_000)), false, 'BAD_REQUEST'],
    ['an array', text('[]'), false, 'BAD_REQUEST'],
    ['an empty event', text('{"event":""}'), false, 'BAD_REQUEST'],
    ['a string data', text('{"event":"ping","data":"x"}'), false, 'VALIDATION_FAILED'],
    ['an array data', text('{"event":"ping","data":[]}'), false, 'VALIDATION_FAILED'],
  ])('turns %s into an invalid frame with %s, never a throw', (_name, raw, isBinary, code) => {
    const frame = decodeFrame(raw, isBinary);
    expect(frame.kind).toBe('invalid');
    if (frame.kind === 'invalid') expect(frame.error.code).toBe(code);
  });

  it('keeps the requestId of a frame whose event is bad, so the error can name it', () => {
    expect(decodeFrame(text('{"event":5,"data":{"requestId":"r9"}}'), false)).toMatchObject({
      kind: 'invalid',
      requestId: 'r9',
    });
  });

  it('accepts fragmented input', () => {
    expect(decodeFrame([text('{"event":'), text('"ping"}')], false)).toMatchObject({ kind: 'request', event: 'ping' });
  });
});
