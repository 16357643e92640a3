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

describe('decodeClientFrame and text that is not well-formed', () => {
  it('refuses a lone surrogate escape in any field with invalid_message naming the field', () => {
    const d = decodeClientFrame('{"receiver":"bob","content":"a\\ud800b","clientId":"c4"}', false);
    expect(d).toEqual({
      ok: false,
      code: 'invalid_message',
      message: 'content: must be well-formed Unicode text (no lone UTF-16 surrogates)',
      clientId: 'c4',
    });
    expect(decodeClientFrame('{"receiver":"\\udc00","content":"x"}', false)).toMatchObject({
      ok: false,
      code: 'invalid_message',
      message: expect.stringMatching(/^receiver: /),
    });
    expect(
      decodeClientFrame('{"receiver":"b","content":"x","extra":["\\ud800"]}', false),
    ).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^extra\/0: /),
    });
  });

  it('does not echo a clientId that is itself not well-formed', () => {
    const d = decodeClientFrame('{"receiver":"b","content":"x","clientId":"\\ud800"}', false);
    expect(d).toMatchObject({ ok: false, code: 'invalid_message' });
    expect(d).not.toHaveProperty('clientId');
  });

  it('accepts escapes of well-formed text: a surrogate pair, plain characters', () => {
    const d = decodeClientFrame('{"receiver":"b","content":"\\ud83d\\ude00 \\u0041"}', false);
    expect(d).toEqual({
      ok: true,
      frame: { type: 'message', receiver: 'b', content: '😀 A' },
    });
  });

  it('checks a frame given as text even without escapes (ws delivers checked UTF-8 bytes)', () => {
    expect(decodeClientFrame('{"receiver":"b","content":"\ud800"}', false)).toMatchObject({
      ok: false,
      code: 'invalid_message',
    });
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
