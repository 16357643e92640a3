// Groups and the conversation list: create, rename, add and remove members, change roles (the
// rules are in membership.ts, applied by the store inside the change's transaction). Each change
// is an event of the members' streams, delivered live once committed; a removed member gets the
// removal as their last event of the group, and nothing after it.
import type { Bus } from '../bus/bus.js';
import type { Caller } from './caller.js';
import { AppError } from '../errors.js';
import { encodeFrame } from '../protocol/codec.js';
import type { Role } from '../protocol/message.js';
import type {
  ChangeResult,
  Conversation,
  ConversationChange,
  Page,
  Store,
} from '../storage/store.js';

export interface ConversationsDeps {
  store: Store;
  bus: Bus;
  /** Most members a group may have. */
  maxMembers: number;
  /** Members listed in full per conversation; larger groups list this many and a count. */
  memberPreview: number;
}

/**
 * The conversation a frame names: `conversationId`, or `with` (the direct conversation with that
 * user, if it exists). Undefined when it names none.
 */
export async function resolveConversation(
  store: Store,
  userId: string,
  target: { conversationId?: string | undefined; with?: string | undefined },
): Promise<string | undefined> {
  if (target.conversationId !== undefined) return target.conversationId;
  if (target.with === undefined) return undefined;
  const peer = await store.findUserByName(target.with);
  return peer && store.directConversationId(userId, peer.id);
}

/**
 * The conversation a frame names and its member ids, when the caller is one of them; otherwise
 * the caller is answered with `conversation_not_found` and the result is undefined.
 */
export async function callerConversation(
  store: Store,
  caller: Caller,
  frame: {
    conversationId?: string | undefined;
    with?: string | undefined;
    clientId?: string | undefined;
  },
): Promise<{ conversationId: string; members: string[] } | undefined> {
  const conversationId = await resolveConversation(store, caller.userId, frame);
  const members =
    conversationId === undefined ? undefined : await store.membersOf(conversationId, caller.userId);
  if (conversationId !== undefined && members !== undefined) return { conversationId, members };
  caller.reply({
    type: 'error',
    code: 'conversation_not_found',
    message: 'No such conversation, or you are not a member of it',
    clientId: frame.clientId,
  });
  return undefined;
}

export class Conversations {
  constructor(private readonly d: ConversationsDeps) {}

  async create(actorId: string, title: string | null, members: string[]): Promise<Conversation> {
    const memberIds = await this.userIds(members);
    const result = await this.change({ kind: 'create', actorId, title, memberIds });
    return this.get(actorId, result);
  }

  async rename(actorId: string, conversationId: string, title: string): Promise<Conversation> {
    const result = await this.change({ kind: 'rename', actorId, conversationId, title });
    return this.get(actorId, result);
  }

  async addMembers(
    actorId: string,
    conversationId: string,
    members: string[],
  ): Promise<Conversation> {
    const memberIds = await this.userIds(members);
    const result = await this.change({ kind: 'add', actorId, conversationId, memberIds });
    return this.get(actorId, result);
  }

  async setRole(
    actorId: string,
    conversationId: string,
    member: string,
    role: Role,
  ): Promise<Conversation> {
    const [memberId] = await this.userIds([member], 'member_not_found');
    const result = await this.change({
      kind: 'role',
      actorId,
      conversationId,
      memberId: memberId!,
      role,
    });
    return this.get(actorId, result);
  }

  /** Removes a member (an admin removing someone, or anyone leaving). */
  async removeMember(actorId: string, conversationId: string, member: string): Promise<void> {
    const [memberId] = await this.userIds([member], 'member_not_found');
    await this.change({ kind: 'remove', actorId, conversationId, memberId: memberId! });
  }

  async list(userId: string, before: string | undefined, limit: number) {
    return this.d.store.listConversations(userId, {
      before,
      limit,
      memberPreview: this.d.memberPreview,
    });
  }

  async one(userId: string, conversationId: string): Promise<Conversation> {
    const c = await this.d.store.getConversation(userId, conversationId, this.d.memberPreview);
    if (!c) throw new AppError('conversation_not_found');
    return c;
  }

  async messages(
    userId: string,
    conversationId: string,
    before: string | undefined,
    limit: number,
  ): Promise<Page> {
    const page = await this.d.store.conversationHistory(userId, conversationId, before, limit);
    if (!page) throw new AppError('conversation_not_found');
    return page;
  }

  private async change(change: ConversationChange) {
    const result: ChangeResult = await this.d.store.changeConversation(change, this.d.maxMembers);
    if (result.kind === 'refused') throw new AppError(result.reason);
    if (result.kind === 'changed')
      void this.d.bus.publish({
        type: 'deliver',
        userIds: result.recipients,
        messageId: result.event.id,
        frame: encodeFrame(result.event),
      });
    return result;
  }

  private get(userId: string, result: { conversationId: string }): Promise<Conversation> {
    return this.one(userId, result.conversationId);
  }

  /** User ids by username (any case); an unknown one is refused with `unknown`. */
  private async userIds(
    names: string[],
    unknown: 'user_not_found' | 'member_not_found' = 'user_not_found',
  ): Promise<string[]> {
    const ids: string[] = [];
    for (const name of names) {
      const user = await this.d.store.findUserByName(name);
      if (!user) throw new AppError(unknown, `No user named ${name}`);
      ids.push(user.id);
    }
    return ids;
  }
}
