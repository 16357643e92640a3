// A conversation fetched over HTTP is a snapshot taken when the server answered; receipts and
// messages that reached the page over the socket meanwhile may be newer. Watermarks only move
// forward, so the merged conversation keeps the newer of each instead of the snapshot's.

interface Watermarks {
  username: string;
  deliveredUpTo: string;
  readUpTo: string;
}

interface ConversationSnapshot {
  lastActivityId: string;
  unreadCount: number;
  lastMessage: { id: string } | null;
  members: Watermarks[];
}

type Compare = (a: string, b: string) => number;

/**
 * `fresh` (from the server) with `known`'s watermarks, last message and activity where those are
 * newer. The unread count is the snapshot's unless the page already knew of newer activity.
 */
export function mergeConversation<C extends ConversationSnapshot>(
  known: C,
  fresh: C,
  compare: Compare,
): C {
  const newer = (a: string, b: string) => (compare(a, b) >= 0 ? a : b);
  const before = new Map(known.members.map((m) => [m.username.toLowerCase(), m]));
  const members = fresh.members.map((m) => {
    const k = before.get(m.username.toLowerCase());
    if (!k) return m;
    return {
      ...m,
      deliveredUpTo: newer(m.deliveredUpTo, k.deliveredUpTo),
      readUpTo: newer(m.readUpTo, k.readUpTo),
    };
  });
  const stale = compare(known.lastActivityId, fresh.lastActivityId) > 0;
  const lastMessage =
    known.lastMessage &&
    (!fresh.lastMessage || compare(known.lastMessage.id, fresh.lastMessage.id) > 0)
      ? known.lastMessage
      : fresh.lastMessage;
  return {
    ...fresh,
    members,
    lastMessage,
    lastActivityId: stale ? known.lastActivityId : fresh.lastActivityId,
    unreadCount: stale ? known.unreadCount : fresh.unreadCount,
  };
}
