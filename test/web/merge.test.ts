// The browser client's merge of a fetched conversation into the one it already shows.
import { describe, expect, it } from 'vitest';
import { compareIds } from '../../client/src/ids.js';
import { mergeConversation } from '../../web/src/merge.js';

const member = (username: string, deliveredUpTo: string, readUpTo: string) => ({
  username,
  deliveredUpTo,
  readUpTo,
});
const conversation = (
  lastActivityId: string,
  unreadCount: number,
  members: ReturnType<typeof member>[],
) => ({
  id: 'c1',
  lastActivityId,
  unreadCount,
  lastMessage: { id: lastActivityId, content: `m${lastActivityId}` },
  members,
});

describe('mergeConversation', () => {
  it('keeps a read receipt that arrived over the socket after the snapshot was taken', () => {
    const known = conversation('10', 0, [member('alice', '10', '10'), member('Bob', '10', '10')]);
    const fresh = conversation('10', 0, [member('alice', '10', '9'), member('bob', '9', '9')]);
    const merged = mergeConversation(known, fresh, compareIds);
    expect(merged.members).toEqual([member('alice', '10', '10'), member('bob', '10', '10')]);
  });

  it('takes the newer watermarks, members and unread count from a newer snapshot', () => {
    const known = conversation('10', 1, [member('alice', '10', '8'), member('bob', '9', '9')]);
    const fresh = conversation('12', 3, [member('alice', '12', '9'), member('carol', '0', '0')]);
    const merged = mergeConversation(known, fresh, compareIds);
    expect(merged.members).toEqual([member('alice', '12', '9'), member('carol', '0', '0')]);
    expect(merged.lastActivityId).toBe('12');
    expect(merged.unreadCount).toBe(3);
    expect(merged.lastMessage).toEqual({ id: '12', content: 'm12' });
  });

  it('keeps the last message and unread count the page knew when the snapshot is older', () => {
    const known = conversation('100', 2, [member('alice', '100', '98')]);
    const fresh = conversation('99', 1, [member('alice', '99', '98')]);
    const merged = mergeConversation(known, fresh, compareIds);
    expect(merged.lastActivityId).toBe('100');
    expect(merged.unreadCount).toBe(2);
    expect(merged.lastMessage).toEqual({ id: '100', content: 'm100' });
    expect(merged.members).toEqual([member('alice', '100', '98')]);
  });
});
