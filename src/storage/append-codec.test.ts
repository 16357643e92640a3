import { describe, expect, it } from 'vitest';
import { decodeBatch, decodeResults, encodeBatch, encodeResults } from './append-codec.js';
import type { AppendResult, NewMessage } from './store.js';

describe('append codec', () => {
  it('round-trips a batch and its results', () => {
    const batch: NewMessage[] = [
      { senderId: '1', receiver: 'Bob', content: 'hi, there', clientId: 'c1' },
      { senderId: '1', receiver: 'nobody', content: 'x', clientId: undefined },
      { senderId: '2', receiver: 'ann', content: 'dup' },
    ];
    expect(decodeBatch(encodeBatch(batch))).toEqual(batch);
    const m = (id: string, content: string) =>
      ({
        type: 'message',
        id,
        conversationId: '4',
        sender: 'ann',
        receiver: 'Bob',
        content,
        createdAt: '2026-01-01T00:00:00.000Z',
      }) as const;
    const results: AppendResult[] = [
      { kind: 'stored', event: m('7', 'hi, there'), recipients: ['1', '2'] },
      { kind: 'unknown_receiver' },
      {
        kind: 'duplicate',
        event: { ...m('3', 'gone'), content: undefined, deletedAt: '2026-01-02T00:00:00.000Z' },
      },
    ];
    expect(decodeResults(encodeResults(results), batch)).toEqual(
      JSON.parse(JSON.stringify(results)),
    );
  });
});
