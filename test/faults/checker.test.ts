// The checker itself: a clean history passes, and a history that breaks each rule fails it.
import { describe, expect, it } from 'vitest';
import { check, compareIds, figuresLine } from './checker.js';
import { Recorder, type StoredMessage } from './recorder.js';

const at = '2030-01-01T00:00:00.000Z';
const msg = (id: number, clientId: string, extra: Partial<StoredMessage> = {}): StoredMessage => ({
  id: String(id),
  sender: 'ann',
  receiver: 'bob',
  content: `${clientId} hé 👋`,
  createdAt: at,
  ...extra,
});

/** ann sends c1 (acked #1), c2 (acked #2), c3 (rate_limited), c4 (no answer); bob sees #1, #2. */
function scenario() {
  const r = new Recorder();
  const send = (clientId: string) =>
    r.invoke({
      process: 'ann',
      sender: 'ann',
      receiver: 'bob',
      clientId,
      content: `${clientId} hé 👋`,
    });
  r.ok(send('c1'), '1', at);
  r.ok(send('c2'), '2', at);
  r.error(send('c3'), 'rate_limited');
  send('c4');
  r.deliver('bob', '1', 'live', msg(1, 'c1'));
  r.deliver('bob', '1', 'replay', msg(2, 'c2'));
  return r;
}

const stored = [msg(1, 'c1'), msg(2, 'c2')];
const failures = (result: ReturnType<typeof check>) => result.violations.join('\n');

describe('the fault checker', () => {
  it('passes a history that keeps every rule, and counts it', () => {
    const result = check(scenario().finish(), stored, { receivers: ['bob'] });
    expect(failures(result)).toBe('');
    expect(result.figures).toMatchObject({
      sent: 4,
      attempts: 4,
      acked: 2,
      failed: 1,
      unknown: 1,
      unknownStored: 0,
      stored: 2,
      lost: 0,
      duplicated: 0,
      phantom: 0,
      live: 1,
      replayed: 1,
    });
    expect(figuresLine('demo', result.figures)).toMatch(
      /^\[fault\] demo: sent=4 acked=2 lost=0 duplicated=0 /,
    );
  });

  it('accepts an unknown-outcome send stored once, and a retry acked with the original id', () => {
    const r = scenario();
    const retry = r.invoke({
      process: 'ann',
      sender: 'ann',
      receiver: 'bob',
      clientId: 'c1',
      content: 'c1 hé 👋',
    });
    r.ok(retry, '1', at);
    const history = r.finish();
    const result = check(history, [...stored, msg(3, 'c4')]);
    expect(failures(result)).toBe('');
    expect(result.figures).toMatchObject({ sent: 4, attempts: 5, unknownStored: 1 });
  });

  it('fails when an acked send is not stored (lost)', () => {
    const result = check(scenario().finish(), [msg(2, 'c2')]);
    expect(failures(result)).toMatch(/lost: ann\/c1 acked as #1/);
    expect(result.figures.lost).toBe(1);
  });

  it('fails when an acked send is stored twice (duplicated)', () => {
    const result = check(scenario().finish(), [...stored, msg(5, 'c2')]);
    expect(failures(result)).toMatch(/duplicated: ann\/c2 stored 2 times/);
    expect(result.figures.duplicated).toBe(1);
  });

  it('fails when an acked send is stored under another id or time than its ack', () => {
    expect(failures(check(scenario().finish(), [msg(1, 'c1'), msg(7, 'c2')]))).toMatch(
      /acked as #2 .* stored as #7/,
    );
    const later = { createdAt: '2030-01-01T00:00:01.000Z' };
    expect(failures(check(scenario().finish(), [msg(1, 'c1'), msg(2, 'c2', later)]))).toMatch(
      /acked as #2 at .* stored as #2 at 2030-01-01T00:00:01/,
    );
  });

  it('fails when retries of one send were acked with different ids', () => {
    const r = scenario();
    const retry = r.invoke({
      process: 'ann',
      sender: 'ann',
      receiver: 'bob',
      clientId: 'c1',
      content: 'c1 hé 👋',
    });
    r.ok(retry, '9', at);
    expect(failures(check(r.finish(), stored))).toMatch(/acked with different ids 1,9/);
  });

  it('fails when a send that got a definite error is stored', () => {
    const result = check(scenario().finish(), [...stored, msg(3, 'c3')]);
    expect(failures(result)).toMatch(/stored after a definite error: ann\/c3 \(rate_limited\)/);
  });

  it('counts internal_error as unknown unless told it is definite', () => {
    for (const definite of [false, true]) {
      const r = new Recorder({ internalErrorIsDefinite: definite });
      const a = r.invoke({
        process: 'ann',
        sender: 'ann',
        receiver: 'bob',
        clientId: 'c1',
        content: 'c1 x',
      });
      r.error(a, 'internal_error');
      const result = check(r.finish(), [msg(1, 'c1', { content: 'c1 x' })]);
      expect(result.ok).toBe(!definite);
    }
  });

  it('fails when an unknown-outcome send is stored twice', () => {
    const result = check(scenario().finish(), [...stored, msg(3, 'c4'), msg(4, 'c4')]);
    expect(failures(result)).toMatch(/duplicated: ann\/c4 stored 2 times/);
  });

  it('fails on a phantom: a message nobody sent, or one whose content or receiver changed', () => {
    const nobody = check(scenario().finish(), [...stored, msg(3, 'zz')]);
    expect(failures(nobody)).toMatch(/phantom: #3 .* matches no send/);
    expect(nobody.figures.phantom).toBe(1);
    // The same message with U+FFFD where the client sent 'é': not byte-exact.
    const changed = check(scenario().finish(), [
      msg(1, 'c1', { content: 'c1 h\ufffd 👋' }),
      msg(2, 'c2'),
    ]);
    expect(failures(changed)).toMatch(/phantom: #1 .* is not byte-exact/);
    expect(failures(changed)).toMatch(/lost: ann\/c1/);
    const elsewhere = check(scenario().finish(), [msg(1, 'c1', { receiver: 'cy' }), msg(2, 'c2')]);
    expect(failures(elsewhere)).toMatch(/phantom: #1 ann->cy/);
  });

  it('fails when a receiver never got a message of its stream', () => {
    const r = new Recorder();
    r.ok(
      r.invoke({ process: 'ann', sender: 'ann', receiver: 'bob', clientId: 'c1', content: 'c1 a' }),
      '1',
      at,
    );
    const result = check(r.finish(), [msg(1, 'c1', { content: 'c1 a' })], { receivers: ['bob'] });
    expect(failures(result)).toMatch(/bob never got 1 of its 1 messages/);
  });

  it('fails when a receiver got a message that is not stored, or not as stored', () => {
    const r = scenario();
    r.deliver('bob', '2', 'live', msg(9, 'c9'));
    expect(failures(check(r.finish(), stored, { receivers: ['bob'] }))).toMatch(
      /bob got #9 .* which is not stored/,
    );
    const s = scenario();
    s.deliver('bob', '2', 'http', msg(2, 'c2', { content: 'c2 other' }));
    expect(failures(check(s.finish(), stored, { receivers: ['bob'] }))).toMatch(
      /bob got #2 .* but stored is #2/,
    );
  });

  it('fails when a receiver got its messages out of order, unless order is not required', () => {
    const r = new Recorder();
    for (const [clientId, id] of [
      ['c1', '1'],
      ['c2', '2'],
    ] as const)
      r.ok(
        r.invoke({
          process: 'ann',
          sender: 'ann',
          receiver: 'bob',
          clientId,
          content: `${clientId} hé 👋`,
        }),
        id,
        at,
      );
    r.deliver('bob', '1', 'live', msg(2, 'c2'));
    r.deliver('bob', '1', 'live', msg(1, 'c1'));
    // A second copy in a replay is fine: the view counts each id once.
    r.deliver('bob', '2', 'replay', msg(2, 'c2'));
    const history = r.finish();
    expect(failures(check(history, stored, { receivers: ['bob'] }))).toMatch(
      /bob got #1 after #2: out of order/,
    );
    expect(check(history, stored, { receivers: ['bob'], ordered: false }).ok).toBe(true);
  });

  it('compares ids as numbers of any length', () => {
    expect(compareIds('9', '10')).toBeLessThan(0);
    expect(compareIds('12345678901234567', '12345678901234568')).toBeLessThan(0);
    expect(compareIds('42', '42')).toBe(0);
  });
});
