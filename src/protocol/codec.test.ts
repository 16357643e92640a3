import { describe, expect, it } from 'vitest';
import { decodeClientFrame, encodeFrame } from './codec.js';

const decode = (frame: unknown) => decodeClientFrame(JSON.stringify(frame), false);

describe('decodeClientFrame', () => {
  it('refuses binary, non-JSON and non-object frames with the catalogue codes', () => {
    expect(decodeClientFrame(Buffer.from('{}'), true)).toMatchObject({
      ok: false,
      code: 'invalid_message',
    });
    expect(decodeClientFrame('{nope', false)).toMatchObject({ ok: false, code: 'invalid_json' });
    for (const f of [[], null, 3, 'x'])
      expect(decode(f)).toMatchObject({ ok: false, code: 'invalid_message' });
  });

  it('reads a frame without `type` as a message and fills the type in', () => {
    expect(decode({ receiver: 'bob', content: 'hi' })).toEqual({
      ok: true,
      frame: { type: 'message', receiver: 'bob', content: 'hi' },
    });
  });

  it('names every frame type when the type is unknown, and echoes a string clientId', () => {
    const d = decode({ type: 'shout', clientId: 'c1' });
    expect(d).toEqual({
      ok: false,
      code: 'invalid_message',
      message: 'type must be "message", "sync", "ping", "read", "typing", "edit" or "delete"',
      clientId: 'c1',
    });
    expect(decode({ type: 7, clientId: 8 })).not.toHaveProperty('clientId');
  });

  it('says which field failed its schema', () => {
    const d = decode({ receiver: 'bob', clientId: 'c2' });
    expect(d).toMatchObject({ ok: false, code: 'invalid_message', clientId: 'c2' });
    expect(!d.ok && d.message).toMatch(/content|required/);
    expect(decode({ type: 'sync', after: 'x' })).toMatchObject({ ok: false });
    expect(decode({ type: 'sync', after: null })).toMatchObject({ ok: true });
  });

  it('counts content in code points: 4000 astral characters pass, 4001 do not', () => {
    const ok = decode({ receiver: 'bob', content: '😀'.repeat(4000) });
    expect(ok.ok).toBe(true);
    const long = decode({ receiver: 'bob', content: '😀'.repeat(4001), clientId: 'c3' });
    expect(long).toMatchObject({ ok: false, code: 'invalid_message', clientId: 'c3' });
    expect(decode({ receiver: 'bob', content: 'a'.repeat(4001) }).ok).toBe(false);
  });
});

describe('encodeFrame', () => {
  it('leaves out absent optional fields and keeps field order', () => {
    expect(encodeFrame({ type: 'ack', clientId: undefined, id: '1', createdAt: 't' })).toBe(
      '{"type":"ack","id":"1","createdAt":"t"}',
    );
    expect(encodeFrame({ type: 'ack', clientId: 'c', id: '1', createdAt: 't' })).toBe(
      '{"type":"ack","clientId":"c","id":"1","createdAt":"t"}',
    );
    expect(encodeFrame({ type: 'pong' })).toBe('{"type":"pong"}');
  });
});
