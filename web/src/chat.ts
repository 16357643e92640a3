// The page's state, kept up to date from the client library's events: the conversations with
// their messages, unread counts and watermarks, the outbox, typing, presence, blocks and the
// connection. Components read it and call its methods; every change bumps `version` and tells
// the subscribers (the app re-renders; it is small enough not to need finer updates).
import {
  ChatClient,
  ChatError,
  compareIds,
  indexedDbStorage,
  webStorageTokenStore,
  type ConnectionState,
  type Conversation,
  type Message,
  type OutboxEntry,
  type Settings,
  type User,
} from '@chat-server/client';
import { mergeConversation } from './merge';

export interface ConversationState {
  conversation: Conversation;
  /** Oldest first; a window of the history (older pages load on demand) plus live messages. */
  messages: Message[];
  /** The first page of history has been loaded. */
  loaded: boolean;
  /** The server has older messages than the first of `messages`. */
  hasMore: boolean;
  loadingOlder: boolean;
}

/** What the main pane shows: a conversation, or a direct one with a user not yet written to. */
export type Selection = { kind: 'conversation'; id: string } | { kind: 'draft'; username: string };

export type MessageStatus = 'sending' | 'sent' | 'delivered' | 'read';

export interface Presence {
  online: boolean;
  lastSeen: string | null;
}

export interface Notice {
  id: number;
  text: string;
}

const HISTORY_PAGE = 50;
const LIST_PAGE = 50;
const PRESENCE_LOOKUPS = 30;

const lower = (s: string) => s.toLowerCase();

/** The base URL of the server: this page's directory (the client is served at `/`). */
function baseUrl(): string {
  return `${location.origin}${location.pathname.replace(/\/[^/]*$/, '')}`;
}

export class Chat {
  readonly client: ChatClient;
  version = 0;
  /** Reading the stored session at start. */
  booting = true;
  user: User | null = null;
  connection: ConnectionState = { status: 'idle' };
  /** navigator.onLine: false means certainly offline. */
  networkOnline = typeof navigator === 'undefined' ? true : navigator.onLine;
  /** Why the last session ended, shown on the sign-in screen. */
  signedOutReason: string | null = null;
  conversations = new Map<string, ConversationState>();
  listHasMore = false;
  listLoaded = false;
  selected: Selection | null = null;
  pending: OutboxEntry[] = [];
  /** Conversation id, then username, then when the indicator goes. */
  typing = new Map<string, Map<string, number>>();
  presence = new Map<string, Presence>();
  blocks: User[] = [];
  settings: Settings | null = null;
  notices: Notice[] = [];

  private listeners = new Set<() => void>();
  private fetching = new Map<string, Promise<ConversationState | undefined>>();
  private typingTimer: ReturnType<typeof setTimeout> | undefined;
  private noticeSeq = 0;
  private wasOnline = false;

  /**
   * Where this browser's first connection for a user starts the stream: after the newest event of
   * the conversation list, which was read over HTTP (histories load page by page as one scrolls).
   * Later connections resume from the cursor the client keeps in IndexedDB.
   */
  private startCursor: string | undefined;

  constructor(client?: ChatClient) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const chat = this;
    this.client =
      client ??
      new ChatClient({
        baseUrl: baseUrl(),
        // The session survives reloads and is shared by tabs; see README ("Where the refresh
        // token lives"): readable by any script of this page.
        tokens: webStorageTokenStore(localStorage),
        // The outbox survives reloads: messages written offline go out once back online.
        storage: indexedDbStorage(),
        // Read when a connection is opened (connect() waits for the list): a new device does not
        // replay the whole of a user's past, only what follows the list it has shown.
        get initialCursor() {
          return chat.startCursor ?? '0';
        },
      });
    this.listen();
  }

  // ---- Subscriptions ----

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    this.version += 1;
    for (const l of this.listeners) l();
  }

  // ---- Accounts ----

  async start(): Promise<void> {
    try {
      const user = await this.client.resume();
      if (user) this.afterSignIn(user);
    } finally {
      this.booting = false;
      this.changed();
    }
  }

  async signIn(username: string, password: string): Promise<void> {
    const user = await this.client.login(username, password);
    this.afterSignIn(user);
  }

  async signUp(username: string, password: string): Promise<void> {
    await this.client.register(username, password);
    await this.signIn(username, password);
  }

  async signOut(): Promise<void> {
    try {
      await this.client.logout();
    } catch (e) {
      // The session is forgotten here even if the server could not be told.
      this.notify(`Signed out here; the server could not be reached (${describe(e)}).`);
    }
  }

  private afterSignIn(user: User): void {
    this.user = user;
    this.signedOutReason = null;
    void this.loadConversations().finally(() => {
      if (this.user?.id === user.id && this.networkOnline) this.client.connect();
    });
    void this.loadBlocksAndSettings();
    this.refreshPending();
    this.changed();
  }

  private reset(): void {
    this.user = null;
    this.startCursor = undefined;
    this.conversations = new Map();
    this.listLoaded = false;
    this.listHasMore = false;
    this.selected = null;
    this.pending = [];
    this.typing = new Map();
    this.presence = new Map();
    this.blocks = [];
    this.settings = null;
    this.fetching = new Map();
    this.wasOnline = false;
  }

  // ---- Conversations ----

  /** Conversations, most recent activity first. */
  list(): ConversationState[] {
    return [...this.conversations.values()].sort((a, b) =>
      compareIds(b.conversation.lastActivityId, a.conversation.lastActivityId),
    );
  }

  async loadConversations(more = false): Promise<void> {
    try {
      const before = more ? this.list().at(-1)?.conversation.lastActivityId : undefined;
      const page = await this.client.conversations({ limit: LIST_PAGE, before });
      for (const c of page.conversations) this.upsertConversation(c);
      if (!more) this.startCursor ??= page.conversations[0]?.lastActivityId;
      this.listHasMore = page.hasMore;
      this.listLoaded = true;
      this.changed();
      // The open conversation's fresh unread count: read by being open.
      this.markRead();
      void this.lookUpPresence(page.conversations);
    } catch (e) {
      this.notify(`Could not load the conversations: ${describe(e)}`);
    }
  }

  /** The state of a conversation, fetched from the server when it is not known yet. */
  ensureConversation(id: string): Promise<ConversationState | undefined> {
    const known = this.conversations.get(id);
    if (known) return Promise.resolve(known);
    let pending = this.fetching.get(id);
    if (!pending) {
      pending = this.client
        .conversation(id)
        .then((c) => {
          const state = this.upsertConversation(c);
          this.changed();
          void this.lookUpPresence([c]);
          return state;
        })
        .catch(() => undefined)
        .finally(() => this.fetching.delete(id));
      this.fetching.set(id, pending);
    }
    return pending;
  }

  private upsertConversation(c: Conversation): ConversationState {
    const known = this.conversations.get(c.id);
    if (known) {
      // The answer may be older than receipts that arrived over the socket while it travelled.
      known.conversation = mergeConversation(known.conversation, c, compareIds);
      return known;
    }
    const state: ConversationState = {
      conversation: c,
      messages: [],
      loaded: false,
      hasMore: true,
      loadingOlder: false,
    };
    this.conversations.set(c.id, state);
    return state;
  }

  /** The other member of a direct conversation. */
  peer(c: Conversation): string | undefined {
    const me = this.user ? lower(this.user.username) : '';
    return c.members.find((m) => lower(m.username) !== me)?.username;
  }

  title(c: Conversation): string {
    return c.kind === 'group' ? (c.title ?? 'Group') : (this.peer(c) ?? 'Direct conversation');
  }

  directWith(username: string): ConversationState | undefined {
    const name = lower(username);
    for (const s of this.conversations.values())
      if (s.conversation.kind === 'direct' && lower(this.peer(s.conversation) ?? '') === name)
        return s;
    return undefined;
  }

  selectedState(): ConversationState | undefined {
    const s = this.selected;
    if (!s) return undefined;
    return s.kind === 'conversation' ? this.conversations.get(s.id) : this.directWith(s.username);
  }

  async select(selection: Selection | null): Promise<void> {
    if (selection?.kind === 'draft') {
      const existing = this.directWith(selection.username);
      if (existing) selection = { kind: 'conversation', id: existing.conversation.id };
    }
    this.selected = selection;
    this.changed();
    if (selection?.kind === 'draft') {
      if (!this.presence.has(lower(selection.username))) void this.lookUpUser(selection.username);
      // A direct conversation may exist beyond the first page of the list.
      try {
        const page = await this.client.history(selection.username, { limit: 1 });
        const id = page.messages[0]?.conversationId;
        if (id && this.selected === selection) {
          await this.ensureConversation(id);
          if (this.selected === selection) this.selected = { kind: 'conversation', id };
          this.changed();
        }
      } catch {
        /* no conversation yet */
      }
    }
    const state = this.selectedState();
    if (state && !state.loaded) await this.loadHistory(state);
    this.markRead();
  }

  /** The first page of a conversation's history, merged with what arrived live. */
  private async loadHistory(state: ConversationState): Promise<void> {
    try {
      const page = await this.client.conversationMessages(state.conversation.id, {
        limit: HISTORY_PAGE,
      });
      this.merge(state, page.messages);
      state.loaded = true;
      state.hasMore = page.hasMore;
      this.changed();
    } catch (e) {
      this.notify(`Could not load the messages: ${describe(e)}`);
    }
  }

  /** Older messages, before the first one shown. */
  async loadOlder(state: ConversationState): Promise<void> {
    if (state.loadingOlder || !state.hasMore) return;
    const before = state.messages[0]?.id;
    state.loadingOlder = true;
    this.changed();
    try {
      const page = await this.client.conversationMessages(state.conversation.id, {
        limit: HISTORY_PAGE,
        before,
      });
      this.merge(state, page.messages);
      state.hasMore = page.hasMore;
    } catch (e) {
      this.notify(`Could not load older messages: ${describe(e)}`);
    } finally {
      state.loadingOlder = false;
      this.changed();
    }
  }

  private merge(state: ConversationState, messages: Message[]): void {
    const byId = new Map(state.messages.map((m) => [m.id, m]));
    for (const m of messages) if (!byId.has(m.id)) byId.set(m.id, m);
    state.messages = [...byId.values()].sort((a, b) => compareIds(a.id, b.id));
  }

  // ---- Reading ----

  private visible(): boolean {
    return typeof document === 'undefined' || document.visibilityState !== 'hidden';
  }

  /** Marks the open conversation read up to its newest message, if the page is visible. */
  markRead(): void {
    const state = this.selectedState();
    if (!state || !this.user || !this.visible()) return;
    const c = state.conversation;
    const newest = state.messages.at(-1)?.id ?? c.lastMessage?.id;
    if (!newest) return;
    const me = this.member(c, this.user.username);
    if (me && compareIds(me.readUpTo, newest) >= 0 && c.unreadCount === 0) return;
    this.client.read({ conversationId: c.id }, newest);
    if (me && compareIds(me.readUpTo, newest) < 0) me.readUpTo = newest;
    if (c.unreadCount !== 0) {
      c.unreadCount = 0;
      this.changed();
    }
  }

  private member(c: Conversation, username: string) {
    const name = lower(username);
    return c.members.find((m) => lower(m.username) === name);
  }

  /** Where one's own message is: sending (in the outbox), sent, delivered to or read by all. */
  status(c: Conversation, messageId: string): MessageStatus {
    const me = lower(this.user?.username ?? '');
    const others = c.members.filter((m) => lower(m.username) !== me);
    if (others.length === 0) return 'sent';
    if (others.every((m) => compareIds(m.readUpTo, messageId) >= 0)) return 'read';
    if (
      others.every(
        (m) =>
          compareIds(m.deliveredUpTo, messageId) >= 0 || compareIds(m.readUpTo, messageId) >= 0,
      )
    )
      return 'delivered';
    return 'sent';
  }

  // ---- Sending ----

  /** Sends to the selected conversation (or starts the direct one); resolves once queued. */
  send(content: string): void {
    const s = this.selected;
    if (!s) return;
    const state = this.selectedState();
    const target = state
      ? { conversationId: state.conversation.id }
      : s.kind === 'draft'
        ? { to: s.username }
        : undefined;
    if (!target) return;
    this.client.send({ ...target, content }).catch((e: unknown) => {
      if (e instanceof ChatError && e.code === 'signed_out') return;
      this.notify(`Not sent: ${describe(e)}`);
    });
    this.refreshPending();
  }

  edit(messageId: string, content: string): void {
    this.client
      .edit(messageId, content)
      .catch((e: unknown) => this.notify(`Not edited: ${describe(e)}`));
    this.refreshPending();
  }

  delete(messageId: string): void {
    this.client.delete(messageId).catch((e: unknown) => this.notify(`Not deleted: ${describe(e)}`));
    this.refreshPending();
  }

  typingIn(): void {
    const state = this.selectedState();
    const s = this.selected;
    if (state) this.client.typing({ conversationId: state.conversation.id });
    else if (s?.kind === 'draft') this.client.typing({ with: s.username });
  }

  /** The outbox's messages for a conversation (or a draft), oldest first. */
  pendingFor(state: ConversationState | undefined, draft?: string): OutboxEntry[] {
    return this.pending.filter((e) => {
      const f = e.frame;
      if ('type' in f && f.type !== undefined) return false;
      if ('conversationId' in f && f.conversationId !== undefined)
        return state !== undefined && f.conversationId === state.conversation.id;
      const receiver = 'receiver' in f ? f.receiver : undefined;
      if (receiver === undefined) return false;
      if (state) return lower(this.peer(state.conversation) ?? '') === lower(receiver);
      return draft !== undefined && lower(draft) === lower(receiver);
    });
  }

  private refreshPending(): void {
    this.pending = this.client.pending();
    this.changed();
  }

  // ---- Groups ----

  async createGroup(title: string, members: string[]): Promise<Conversation> {
    const c = await this.client.createGroup({ title, members });
    this.upsertConversation(c);
    await this.select({ kind: 'conversation', id: c.id });
    return c;
  }

  async refreshConversation(id: string): Promise<void> {
    try {
      const c = await this.client.conversation(id);
      this.upsertConversation(c);
    } catch (e) {
      if (e instanceof ChatError && e.code === 'conversation_not_found') this.forget(id);
    }
    this.changed();
  }

  private forget(id: string): void {
    this.conversations.delete(id);
    if (this.selected?.kind === 'conversation' && this.selected.id === id) this.selected = null;
  }

  async leave(id: string): Promise<void> {
    await this.client.leaveGroup(id);
    this.forget(id);
    this.changed();
  }

  // ---- Blocks and settings ----

  private async loadBlocksAndSettings(): Promise<void> {
    try {
      const [blocks, settings] = await Promise.all([this.client.blocks(), this.client.settings()]);
      this.blocks = blocks;
      this.settings = settings;
      this.changed();
    } catch {
      /* shown as unknown; the next sign-in retries */
    }
  }

  isBlocked(username: string): boolean {
    return this.blocks.some((u) => lower(u.username) === lower(username));
  }

  async block(username: string): Promise<void> {
    await this.client.block(username);
    this.blocks = await this.client.blocks();
    this.presence.delete(lower(username));
    this.changed();
  }

  async unblock(username: string): Promise<void> {
    await this.client.unblock(username);
    this.blocks = await this.client.blocks();
    this.changed();
    void this.lookUpUser(username);
  }

  async updateSettings(changes: Partial<Settings>): Promise<void> {
    this.settings = await this.client.updateSettings(changes);
    this.changed();
  }

  // ---- Presence ----

  presenceOf(username: string): Presence | undefined {
    return this.presence.get(lower(username));
  }

  private async lookUpPresence(list: Conversation[]): Promise<void> {
    const names = list
      .filter((c) => c.kind === 'direct')
      .map((c) => this.peer(c))
      .filter((n): n is string => n !== undefined && !this.presence.has(lower(n)))
      .slice(0, PRESENCE_LOOKUPS);
    for (const name of names) await this.lookUpUser(name);
  }

  private async lookUpUser(username: string): Promise<void> {
    try {
      const u = await this.client.getUser(username);
      const known = this.presence.get(lower(username));
      // A presence frame that came meanwhile is newer than this answer.
      if (!known) this.presence.set(lower(username), { online: u.online, lastSeen: null });
      this.changed();
    } catch {
      /* unknown user: no dot */
    }
  }

  // ---- Typing ----

  typers(conversationId: string): string[] {
    const now = Date.now();
    const map = this.typing.get(conversationId);
    if (!map) return [];
    return [...map].filter(([, until]) => until > now).map(([user]) => user);
  }

  private scheduleTypingSweep(): void {
    if (this.typingTimer !== undefined) return;
    this.typingTimer = setTimeout(() => {
      this.typingTimer = undefined;
      const now = Date.now();
      let next = Infinity;
      for (const [id, map] of this.typing) {
        for (const [user, until] of map) {
          if (until <= now) map.delete(user);
          else next = Math.min(next, until);
        }
        if (map.size === 0) this.typing.delete(id);
      }
      this.changed();
      if (next !== Infinity) this.scheduleTypingSweep();
    }, 500);
  }

  // ---- Notices ----

  notify(text: string): void {
    const notice = { id: ++this.noticeSeq, text };
    this.notices = [...this.notices.slice(-2), notice];
    this.changed();
    setTimeout(() => this.dismiss(notice.id), 8000);
  }

  dismiss(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
    this.changed();
  }

  // ---- The library's events ----

  private listen(): void {
    const c = this.client;
    c.on('signedOut', ({ reason }) => {
      this.reset();
      this.signedOutReason =
        reason === 'logout'
          ? null
          : reason === 'elsewhere'
            ? 'Another account signed in in another tab.'
            : reason === 'session_revoked'
              ? 'This session was ended (signed out elsewhere, or the password changed).'
              : 'Your session expired; sign in again.';
      this.changed();
    });
    c.on('signedIn', (user) => {
      // Another tab signed in (resume): follow it.
      if (this.user?.id !== user.id && !this.booting && this.user !== null) {
        this.reset();
        this.afterSignIn(user);
      }
    });
    c.on('state', (state) => {
      this.connection = state;
      if (state.status === 'online') {
        // Receipts, presence and unread counts are not replayed: read them again after a gap.
        if (this.wasOnline) void this.loadConversations();
        this.wasOnline = true;
        this.markRead();
      }
      this.refreshPending();
    });
    c.on('message', (m) => void this.onMessage(m));
    c.on('edit', (e) => {
      const state = this.conversations.get(e.conversationId);
      if (!state) return;
      this.patchMessage(state, e.messageId, { content: e.content, editedAt: e.createdAt });
      this.bump(state, e.id);
      this.changed();
    });
    c.on('delete', (d) => {
      const state = this.conversations.get(d.conversationId);
      if (!state) return;
      this.patchMessage(state, d.messageId, { content: undefined, deletedAt: d.createdAt });
      this.bump(state, d.id);
      this.changed();
    });
    c.on('conversation', (f) => {
      const me = lower(this.user?.username ?? '');
      if (f.action === 'member_removed' && f.members?.some((m) => lower(m) === me)) {
        this.forget(f.conversationId);
        if (lower(f.actor) !== me) this.notify(`You were removed from a group by ${f.actor}.`);
        this.changed();
        return;
      }
      void this.refreshConversation(f.conversationId);
    });
    c.on('receipt', (r) => {
      const state = this.conversations.get(r.conversationId);
      if (!state) return;
      const m = this.member(state.conversation, r.user);
      if (!m) return;
      if (r.kind === 'read' && compareIds(r.upTo, m.readUpTo) > 0) m.readUpTo = r.upTo;
      if (r.kind === 'delivered' && compareIds(r.upTo, m.deliveredUpTo) > 0)
        m.deliveredUpTo = r.upTo;
      if (
        r.kind === 'read' &&
        lower(r.user) === lower(this.user?.username ?? '') &&
        compareIds(r.upTo, state.conversation.lastActivityId) >= 0
      )
        state.conversation.unreadCount = 0; // read on another device
      this.changed();
    });
    c.on('typing', (t) => {
      let map = this.typing.get(t.conversationId);
      if (!map) this.typing.set(t.conversationId, (map = new Map()));
      map.set(t.user, Date.now() + t.expiresInMs);
      this.scheduleTypingSweep();
      this.changed();
    });
    c.on('presence', (p) => {
      this.presence.set(lower(p.user), { online: p.online, lastSeen: p.lastSeen });
      this.changed();
    });
    c.on('sent', ({ ack, frame }) => {
      // Show one's own message at once; its stream event (same id) follows.
      if (!('type' in frame) || frame.type === undefined) {
        const conversationId =
          'conversationId' in frame && frame.conversationId !== undefined
            ? frame.conversationId
            : 'receiver' in frame && frame.receiver !== undefined
              ? this.directWith(frame.receiver)?.conversation.id
              : undefined;
        const state = conversationId ? this.conversations.get(conversationId) : undefined;
        if (state && this.user) {
          this.merge(state, [
            {
              id: ack.id,
              conversationId: state.conversation.id,
              sender: this.user.username,
              content: frame.content,
              createdAt: ack.createdAt,
            },
          ]);
          this.bump(state, ack.id);
        }
      }
      this.refreshPending();
    });
    c.on('failed', ({ error }) => {
      this.notify(`A message was refused: ${describe(error)}`);
      this.refreshPending();
    });
    if (typeof window !== 'undefined') {
      window.addEventListener('offline', () => {
        this.networkOnline = false;
        // No network at all: stop trying until it is back; the outbox waits.
        if (this.user) this.client.disconnect();
        this.changed();
      });
      window.addEventListener('online', () => {
        this.networkOnline = true;
        if (this.user) this.client.connect();
        this.changed();
      });
      document.addEventListener('visibilitychange', () => this.markRead());
    }
  }

  private async onMessage(m: Message): Promise<void> {
    const state = await this.ensureConversation(m.conversationId);
    if (!state) return;
    const known = state.messages.find((x) => x.id === m.id);
    if (known) Object.assign(known, m);
    else this.merge(state, [m]);
    const c = state.conversation;
    // Newer than the conversation as last fetched (whose unread count has the older ones).
    const unseen = compareIds(m.id, c.lastActivityId) > 0;
    const newest = !c.lastMessage || compareIds(m.id, c.lastMessage.id) >= 0;
    if (newest) c.lastMessage = m;
    const mine = lower(m.sender) === lower(this.user?.username ?? '');
    if (!mine && !m.deletedAt) {
      const me = this.user ? this.member(c, this.user.username) : undefined;
      if (unseen && (!me || compareIds(m.id, me.readUpTo) > 0)) c.unreadCount += 1;
      // Its sender is no longer typing.
      this.typing.get(c.id)?.delete(m.sender);
    }
    this.bump(state, m.id);
    // A direct conversation just started from a draft: show it.
    const s = this.selected;
    if (
      s?.kind === 'draft' &&
      c.kind === 'direct' &&
      lower(this.peer(c) ?? '') === lower(s.username)
    ) {
      this.selected = { kind: 'conversation', id: c.id };
      if (!state.loaded) void this.loadHistory(state);
    }
    this.changed();
    if (this.selectedState() === state) this.markRead();
  }

  private patchMessage(state: ConversationState, id: string, patch: Partial<Message>): void {
    const m = state.messages.find((x) => x.id === id);
    if (m) Object.assign(m, patch);
    const last = state.conversation.lastMessage;
    if (last?.id === id) state.conversation.lastMessage = { ...last, ...patch };
  }

  private bump(state: ConversationState, id: string): void {
    if (compareIds(id, state.conversation.lastActivityId) > 0)
      state.conversation.lastActivityId = id;
  }
}

/** A short human explanation of an error. */
export function describe(e: unknown): string {
  if (e instanceof ChatError) return MESSAGES[e.code] ?? e.message;
  return e instanceof Error ? e.message : String(e);
}

const MESSAGES: Record<string, string> = {
  invalid_credentials: 'Wrong username or password.',
  username_taken: 'That username is taken.',
  weak_password: 'That password is too common; choose another.',
  network_error: 'The server cannot be reached.',
  rate_limited: 'Too many attempts; wait a little and try again.',
  user_not_found: 'No such user.',
  unknown_receiver: 'No such user.',
  not_admin: 'Only an admin of the group may do this.',
  last_admin: 'A group keeps at least one admin: make someone else admin first.',
  member_limit: 'The group is full.',
};
