// The rules of a group's membership, as a pure function of its committed state: the creator is
// an admin; admins add, remove and promote; anyone may leave; a group keeps at least one admin
// while it has members; it never has more than the configured number of members. Both stores
// apply it inside the transaction that makes the change, so concurrent changes cannot break it.
import type { ConversationChange, MembershipRefusal, Role } from '../storage/store.js';

/** A group as the rules see it: its members' roles, by user id. */
export interface GroupState {
  kind: 'direct' | 'group';
  title: string | null;
  members: ReadonlyMap<string, Role>;
}

export type Decision =
  | { kind: 'refused'; reason: MembershipRefusal }
  | { kind: 'unchanged' }
  | { kind: 'create'; title: string | null; admins: string[]; members: string[] }
  | { kind: 'rename'; title: string }
  | { kind: 'add'; members: string[] }
  | { kind: 'remove'; member: string }
  | { kind: 'role'; member: string; role: Role };

const refuse = (reason: MembershipRefusal): Decision => ({ kind: 'refused', reason });

/** Decides a change against `state` (undefined: no such conversation). */
export function decide(
  state: GroupState | undefined,
  change: ConversationChange,
  maxMembers: number,
): Decision {
  if (change.kind === 'create') {
    const others = [...new Set(change.memberIds)].filter((id) => id !== change.actorId);
    if (others.length + 1 > maxMembers) return refuse('member_limit');
    return { kind: 'create', title: change.title, admins: [change.actorId], members: others };
  }
  // A non-member learns nothing of a group, not even that it exists; direct conversations have
  // no membership to change.
  const actorRole = state?.members.get(change.actorId);
  if (!state || state.kind !== 'group' || actorRole === undefined)
    return refuse('conversation_not_found');
  const isAdmin = actorRole === 'admin';
  switch (change.kind) {
    case 'rename':
      if (!isAdmin) return refuse('not_admin');
      return change.title === state.title
        ? { kind: 'unchanged' }
        : { kind: 'rename', title: change.title };
    case 'add': {
      if (!isAdmin) return refuse('not_admin');
      const added = [...new Set(change.memberIds)].filter((id) => !state.members.has(id));
      if (added.length === 0) return { kind: 'unchanged' };
      if (state.members.size + added.length > maxMembers) return refuse('member_limit');
      return { kind: 'add', members: added };
    }
    case 'remove': {
      const role = state.members.get(change.memberId);
      if (role === undefined) return refuse('member_not_found');
      if (change.memberId !== change.actorId && !isAdmin) return refuse('not_admin');
      if (role === 'admin' && state.members.size > 1 && admins(state) === 1)
        return refuse('last_admin');
      return { kind: 'remove', member: change.memberId };
    }
    case 'role': {
      if (!isAdmin) return refuse('not_admin');
      const role = state.members.get(change.memberId);
      if (role === undefined) return refuse('member_not_found');
      if (role === change.role) return { kind: 'unchanged' };
      if (role === 'admin' && admins(state) === 1) return refuse('last_admin');
      return { kind: 'role', member: change.memberId, role: change.role };
    }
  }
}

function admins(state: GroupState): number {
  let n = 0;
  for (const role of state.members.values()) if (role === 'admin') n += 1;
  return n;
}
