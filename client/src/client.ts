// ChatClient: one signed-in user's connection to the chat server. It keeps a WebSocket open
// (reconnecting with backoff, resuming the stream from its cursor), sends through an outbox that
// survives reconnects, and reports every stream event once, in order, as typed events.
import { Backoff, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { ChatError } from './errors.js';
import { Http, type FetchLike } from './http.js';
import { compareIds, maxId, newClientId } from './ids.js';
import { defaultLock, type RefreshLock } from './locks.js';
import {
  CLOSE_CODES,
  CONTENT_MAX,
  type AckFrame,
  type ConversationFrame,
  type Conversation,
  type ConversationPage,
  type DeletedFrame,
  type EditedFrame,
  type ErrorFrame,
  type MessageFrame,
  type MessagePage,
  type NewGroup,
  type PresenceFrame,
  type ReadFrame,
  type ReceiptFrame,
  type Role,
  type ServerFrame,
  type SessionList,
  type Settings,
  type SettingsUpdate,
  type StreamFrame,
  type SyncedFrame,
  type SyncPage,
  type Ticket,
  type User,
  type UserList,
  type UserTypingFrame,
  type UserWithPresence,
} from './protocol.js';
import { runtimeGlobal } from './runtime.js';
import { SessionManager, type SignOutReason } from './session.js';
import { openSocket, type Socket, type SocketClose, type WebSocketConstructor } from './socket.js';
import {
  memoryStorage,
  type ClientStorage,
  type OutboxEntry,
  type OutboxFrame,
} from './storage.js';
import { memoryTokenStore, type TokenStore } from './tokens.js';

export interface ChatClientOptions {
  /** The server, e.g. `http://localhost:3000` (a path prefix is kept). */
  baseUrl: string;
  /** The WebSocket URL; by default `baseUrl` with ws:/wss: and `/websocket`. */
  webSocketUrl?: string;
  /** The WebSocket class: globalThis.WebSocket by default; in Node 20, pass `ws`'s. */
  WebSocket?: WebSocketConstructor;
  /** globalThis.fetch by default. */
  fetch?: FetchLike;
  /** Where the session's tokens live; share one between clients of one session (tabs). */
  tokens?: TokenStore;
  /** Outbox and cursor; in memory by default, indexedDbStorage() in browsers. */
  storage?: ClientStorage;
  /** Serialises refreshes across clients of one token storage; defaultLock() by default. */
  lock?: RefreshLock;
  /** The lock's name; clients of one token storage must use the same (the default does). */
  lockName?: string;
  /** Refresh the access token this many seconds before it expires. */
  refreshMarginSec?: number;
  /** Reconnection backoff (full jitter; default 0.5 s doubling up to 30 s). */
  backoff?: BackoffOptions;
  /** Send an application ping this often while connected, in ms (default 25 000; 0: never). */
  pingIntervalMs?: number;
  /** A connection that stays silent this long after a ping is dropped, in ms (default 10 000). */
  pongTimeoutMs?: number;
  /**
   * After each ack of one's own message, edit or deletion, sync the stream so that it comes back
   * as its event (with its conversationId) in stream order (default true). The server sends one's
   * own messages to one's other connections but not to the sending one.
   */
  syncOwnSends?: boolean;
  /** At least this long between two typing frames for one conversation, in ms (default 3000). */
  typingIntervalMs?: number;
  /** Where a user's first connection starts the stream (default "0": all of it). */
  initialCursor?: string;
}

/** Why the connection stopped for good (until connect() is called again). */
export type StopReason = 'session_revoked' | 'unauthorized' | 'forbidden' | 'signed_out';

export type ConnectionState =
  | { status: 'idle' }
  | { status: 'connecting'; attempt: number }
  | { status: 'syncing' }
  | { status: 'online' }
  | {
      status: 'reconnecting';
      attempt: number;
      delayMs: number;
      closeCode?: number | undefined;
      error?: ChatError | undefined;
    }
  | { status: 'stopped'; reason: StopReason; error?: ChatError | undefined };

/** What `send`, `edit` and `delete` resolve with: the ack. */
export interface SendResult {
  /** The id of the stored message (of the edit or deletion event for those). */
  id: string;
  createdAt: string;
  clientId: string;
}

/** A conversation named by its id, or a direct one by the other user. */
export type Target = { conversationId: string } | { with: string };

export interface ChatEvents {
  /** Every stream event (message, edit, delete, conversation) once, in order, before its own event. */
  stream: StreamFrame;
  message: MessageFrame;
  edit: EditedFrame;
  delete: DeletedFrame;
  conversation: ConversationFrame;
  receipt: ReceiptFrame;
  typing: UserTypingFrame;
  presence: PresenceFrame;
  /** A replay is complete: the client is caught up to `lastId`. */
  synced: SyncedFrame;
  state: ConnectionState;
  /** An outbox entry was acked (also entries restored from storage, which have no promise). */
  sent: { clientId: string; ack: AckFrame; frame: OutboxFrame };
  /** An outbox entry was refused for good (e.g. unknown_receiver) and dropped from the outbox. */
  failed: { clientId: string; error: ChatError; frame: OutboxFrame };
  signedIn: User;
  signedOut: { reason: SignOutReason };
  refreshed: { expiresAt: number };
  /** Errors not tied to a call: error frames of read/typing, storage failures, refresh retries. */
  error: ChatError;
}

interface OutboxItem {
  entry: OutboxEntry;
  /** Sent on the current socket, waiting for the ack. */
  inflight: boolean;
  persisted: Promise<void>;
  waiters: Array<{ resolve: (r: SendResult) => void; reject: (e: ChatError) => void }>;
  retryTimer?: ReturnType<typeof setTimeout> | undefined;
  retries: number;
}

const STREAM = new Set(['message', 'edit', 'delete', 'conversation']);
const SIGNALS = new Set(['receipt', 'typing', 'presence']);
/** Error frame codes after which the same frame may go through later. */
const TRANSIENT = new Set(['rate_limited', 'internal_error']);
const SYNC_PREFIX = 'sync:';

export class ChatClient extends Emitter<ChatEvents> {
  private readonly http: Http;
  private readonly session: SessionManager;
  private readonly storage: ClientStorage;
  private readonly WebSocketClass: WebSocketConstructor | undefined;
  private readonly wsUrl: string;
  private readonly backoff: Backoff;
  private readonly o: ChatClientOptions;

  private currentState: ConnectionState = { status: 'idle' };
  private socket: Socket | undefined;
  /** Bumped by every new attempt and by disconnect(): callbacks of older ones are ignored. */
  private generation = 0;
  private wanted = false;
  private attempting = false;
  private closed = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private pongTimer: ReturnType<typeof setTimeout> | undefined;

  /** The user whose cursor and outbox are loaded. */
  private userId: string | null = null;
  private ready: Promise<void> = Promise.resolve();
  private cursor: string | null = null;
  /** Every stream event up to this id has been seen (a replay covered it). */
  private floor: string | null = null;
  /** Ids above `floor` already reported. */
  private readonly seen = new Set<string>();
  private replaying = false;
  private syncAgain = false;
  private syncs = 0;
  private savingCursor: Promise<void> | undefined;
  private cursorDirty = false;

  private outbox = new Map<string, OutboxItem>();
  private seq = 0;
  private readonly pendingReads = new Map<string, ReadFrame>();
  private readonly lastTyping = new Map<string, number>();

  constructor(options: ChatClientOptions) {
    super();
    this.o = options;
    const fetchFn =
      options.fetch ??
      runtimeGlobal<FetchLike & { bind(self: unknown): FetchLike }>('fetch')?.bind(globalThis);
    if (!fetchFn) throw new TypeError('No fetch in this runtime: pass options.fetch');
    this.http = new Http(options.baseUrl, fetchFn);
    this.WebSocketClass = options.WebSocket ?? runtimeGlobal<WebSocketConstructor>('WebSocket');
    this.wsUrl =
      options.webSocketUrl ??
      `${options.baseUrl.replace(/\/+$/, '').replace(/^http(s?):/, 'ws$1:')}/websocket`;
    this.backoff = new Backoff(options.backoff);
    this.storage = options.storage ?? memoryStorage();
    this.session = new SessionManager({
      http: this.http,
      tokens: options.tokens ?? memoryTokenStore(),
      lock: options.lock ?? defaultLock(),
      lockName: options.lockName ?? `chat-client.refresh:${options.baseUrl}`,
      refreshMarginSec: options.refreshMarginSec,
      onSignedIn: (user) => this.onSignedIn(user),
      onSignedOut: (reason) => this.onSignedOut(reason),
      onRefreshed: (s) => this.emit('refreshed', { expiresAt: s.expiresAt }),
      onRefreshError: (error) => this.emit('error', error),
    });
  }

  // ---- Accounts ----

  /** The signed-in user, or null. */
  get user(): User | null {
    return this.session.user;
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** The sync cursor: the newest stream id seen. */
  get syncCursor(): string | null {
    return this.cursor;
  }

  /** Takes up the session in the token storage (after a reload, or one another tab signed in). */
  resume(): Promise<User | null> {
    return this.session.resume();
  }

  /** Creates an account (does not sign in). */
  register(username: string, password: string): Promise<User> {
    return this.session.register(username, password);
  }

  login(username: string, password: string): Promise<User> {
    return this.session.login(username, password);
  }

  /**
   * Revokes the session and forgets it, with this user's outbox and cursor here: unsent messages
   * are dropped and their promises rejected with `signed_out`.
   */
  logout(): Promise<void> {
    // Close the socket first: the revocation's 4001 is expected, not news.
    this.wanted = false;
    this.generation += 1;
    this.dropSocket(1000, 'logout');
    return this.session.logout();
  }

  /** Changes the password; the server revokes every other session of the user. */
  changePassword(currentPassword: string, newPassword: string): Promise<void> {
    return this.session.changePassword(currentPassword, newPassword);
  }

  /** Refreshes the access token now unless it was refreshed meanwhile (normally automatic). */
  async refreshToken(): Promise<void> {
    await this.session.refresh();
  }

  /** A valid access token, for requests of the application's own. */
  accessToken(): Promise<string> {
    return this.session.accessToken();
  }

  // ---- The connection ----

  /** Opens the WebSocket and keeps it open until disconnect(), close() or a stop. */
  connect(): void {
    if (this.closed) throw new ChatError('closed', 'The client is closed');
    if (!this.WebSocketClass)
      throw new TypeError(
        'No WebSocket in this runtime: pass options.WebSocket (e.g. the ws package)',
      );
    this.wanted = true;
    if (this.socket || this.retryTimer !== undefined || this.attempting) return;
    void this.attempt();
  }

  /** Closes the WebSocket and stops reconnecting; the outbox waits for the next connect(). */
  disconnect(): void {
    this.wanted = false;
    this.generation += 1;
    this.dropSocket(1000, 'client_disconnect');
    this.setState({ status: 'idle' });
  }

  /** Disconnects for good: stops timers, rejects waiting sends with `closed` (the outbox stays stored). */
  close(): void {
    if (this.closed) return;
    this.disconnect();
    this.closed = true;
    this.session.close();
    const error = new ChatError('closed', 'The client was closed');
    for (const item of this.outbox.values()) this.settle(item, error);
    this.storage.close?.();
  }

  // ---- Sending ----

  /**
   * Sends a message to a user (`to`) or a conversation (`conversationId`). Resolves with the ack
   * once it is durably stored, however many reconnections that takes; rejects with the error
   * frame's code (e.g. `unknown_receiver`) if it is refused for good.
   */
  send(
    message: ({ to: string } | { conversationId: string }) & { content: string; clientId?: string },
  ): Promise<SendResult> {
    const clientId = message.clientId ?? newClientId();
    const target =
      'to' in message ? { receiver: message.to } : { conversationId: message.conversationId };
    return this.queue({ ...target, content: message.content, clientId }, message.content);
  }

  /** Edits one of one's own messages. */
  edit(
    messageId: string,
    content: string,
    options: { clientId?: string } = {},
  ): Promise<SendResult> {
    const clientId = options.clientId ?? newClientId();
    return this.queue({ type: 'edit', id: messageId, content, clientId }, content);
  }

  /** Deletes one of one's own messages (a tombstone stays). */
  delete(messageId: string, options: { clientId?: string } = {}): Promise<SendResult> {
    const clientId = options.clientId ?? newClientId();
    return this.queue({ type: 'delete', id: messageId, clientId });
  }

  /** The sends, edits and deletions not yet acked, oldest first. */
  pending(): OutboxEntry[] {
    return [...this.outbox.values()].map((item) => item.entry);
  }

  /**
   * Marks a conversation read up to a message id. Not acked; sent when connected (the newest one
   * per conversation waits while offline); an error frame comes as an `error` event.
   */
  read(target: Target, upTo: string): void {
    const frame: ReadFrame = { type: 'read', ...target, upTo };
    const key = targetKey(target);
    const previous = this.pendingReads.get(key);
    if (previous && compareIds(previous.upTo, upTo) > 0) return;
    this.pendingReads.set(key, frame);
    if (this.currentState.status === 'online') this.flushReads();
  }

  /**
   * Tells the conversation's other members that the user is typing. Call it on each keystroke:
   * frames go out at most every `typingIntervalMs`, and only while connected.
   */
  typing(target: Target): void {
    const key = targetKey(target);
    const now = Date.now();
    if (now - (this.lastTyping.get(key) ?? -Infinity) < (this.o.typingIntervalMs ?? 3000)) return;
    if (this.socket?.send(JSON.stringify({ type: 'typing', ...target })))
      this.lastTyping.set(key, now);
  }

  // ---- HTTP helpers (each refreshes the token as needed; failures are ChatErrors) ----

  me(): Promise<User> {
    return this.session.authed({ method: 'GET', path: '/users/me' });
  }

  getUser(username: string): Promise<UserWithPresence> {
    return this.session.authed({ method: 'GET', path: `/users/${enc(username)}` });
  }

  searchUsers(prefix: string, options: { limit?: number } = {}): Promise<User[]> {
    return this.session
      .authed<UserList>({
        method: 'GET',
        path: '/users',
        query: { q: prefix, limit: options.limit },
      })
      .then((r) => r.users);
  }

  sessions(): Promise<SessionList['sessions']> {
    return this.session
      .authed<SessionList>({ method: 'GET', path: '/sessions' })
      .then((r) => r.sessions);
  }

  revokeSession(sessionId: string): Promise<void> {
    return this.session.authed({ method: 'DELETE', path: `/sessions/${enc(sessionId)}` });
  }

  /** The direct conversation with a user, newest `limit` before `before`, oldest first. */
  history(username: string, page: Page = {}): Promise<MessagePage> {
    return this.session.authed({
      method: 'GET',
      path: '/messages',
      query: { with: username, limit: page.limit, before: page.before },
    });
  }

  /** A page of the stream over HTTP (the WebSocket does this by itself). */
  syncPage(options: { after?: string; limit?: number } = {}): Promise<SyncPage> {
    return this.session.authed({ method: 'GET', path: '/sync', query: options });
  }

  /** The user's conversations, most recent activity first; page with `before: lastActivityId`. */
  conversations(page: Page = {}): Promise<ConversationPage> {
    return this.session.authed({ method: 'GET', path: '/conversations', query: { ...page } });
  }

  conversation(id: string): Promise<Conversation> {
    return this.session.authed({ method: 'GET', path: `/conversations/${enc(id)}` });
  }

  conversationMessages(id: string, page: Page = {}): Promise<MessagePage> {
    return this.session.authed({
      method: 'GET',
      path: `/conversations/${enc(id)}/messages`,
      query: { ...page },
    });
  }

  /** Creates a group; the user is its admin. */
  createGroup(group: NewGroup = {}): Promise<Conversation> {
    return this.session.authed({ method: 'POST', path: '/conversations', body: group });
  }

  renameGroup(id: string, title: string): Promise<Conversation> {
    return this.session.authed({
      method: 'PATCH',
      path: `/conversations/${enc(id)}`,
      body: { title },
    });
  }

  addMembers(id: string, members: string[]): Promise<Conversation> {
    return this.session.authed({
      method: 'POST',
      path: `/conversations/${enc(id)}/members`,
      body: { members },
    });
  }

  setRole(id: string, username: string, role: Role): Promise<Conversation> {
    return this.session.authed({
      method: 'PATCH',
      path: `/conversations/${enc(id)}/members/${enc(username)}`,
      body: { role },
    });
  }

  removeMember(id: string, username: string): Promise<void> {
    return this.session.authed({
      method: 'DELETE',
      path: `/conversations/${enc(id)}/members/${enc(username)}`,
    });
  }

  /** Leaves a group. */
  leaveGroup(id: string): Promise<void> {
    const user = this.session.user;
    if (!user) return Promise.reject(new ChatError('signed_out', 'Not signed in'));
    return this.removeMember(id, user.username);
  }

  block(username: string): Promise<void> {
    return this.session.authed({ method: 'POST', path: `/users/${enc(username)}/block` });
  }

  unblock(username: string): Promise<void> {
    return this.session.authed({ method: 'DELETE', path: `/users/${enc(username)}/block` });
  }

  blocks(): Promise<User[]> {
    return this.session
      .authed<UserList>({ method: 'GET', path: '/users/me/blocks' })
      .then((r) => r.users);
  }

  settings(): Promise<Settings> {
    return this.session.authed({ method: 'GET', path: '/users/me/settings' });
  }

  updateSettings(changes: SettingsUpdate): Promise<Settings> {
    return this.session.authed({ method: 'PATCH', path: '/users/me/settings', body: changes });
  }

  // ---- Internals: connecting ----

  private setState(state: ConnectionState): void {
    this.currentState = state;
    this.emit('state', state);
  }

  private async attempt(): Promise<void> {
    const generation = ++this.generation;
    this.attempting = true;
    this.setState({ status: 'connecting', attempt: this.backoff.attempt });
    try {
      if (!this.session.user) throw new ChatError('signed_out', 'Not signed in');
      await this.ready;
      const { ticket } = await this.session.authed<Ticket>({
        method: 'POST',
        path: '/websocket/ticket',
      });
      if (generation !== this.generation || !this.wanted) return;
      const after = this.cursor ?? this.o.initialCursor ?? '0';
      this.floor = maxId(this.floor, after);
      this.prune();
      this.replaying = true;
      this.syncAgain = false;
      const url = `${this.wsUrl}?ticket=${enc(ticket)}&after=${enc(after)}`;
      this.socket = openSocket(this.WebSocketClass as WebSocketConstructor, url, {
        open: () => this.onOpen(generation),
        message: (text) => this.onText(text, generation),
        close: (info) => this.onClose(info, generation),
      });
    } catch (error) {
      if (generation !== this.generation) return;
      const e =
        error instanceof ChatError
          ? error
          : new ChatError('network_error', String(error), { cause: error });
      if (e.code === 'signed_out') this.stop('signed_out', e);
      else if (e.status === 401) this.stop('unauthorized', e);
      else if (e.status === 403) this.stop('forbidden', e);
      else this.retry({ error: e });
    } finally {
      if (generation === this.generation) this.attempting = false;
    }
  }

  private onOpen(generation: number): void {
    if (generation !== this.generation) return;
    this.setState({ status: 'syncing' });
    const every = this.o.pingIntervalMs ?? 25_000;
    if (every > 0) this.pingTimer = setInterval(() => this.ping(generation), every);
  }

  private ping(generation: number): void {
    if (generation !== this.generation || !this.socket) return;
    this.socket.send('{"type":"ping"}');
    this.pongTimer ??= setTimeout(() => {
      // Silent for too long: the connection is dead even if no close came.
      if (generation !== this.generation) return;
      this.socket?.abandon();
      this.onClose({ code: 1006, reason: 'pong_timeout', opened: true }, generation);
    }, this.o.pongTimeoutMs ?? 10_000);
  }

  private onClose(info: SocketClose, generation: number): void {
    if (generation !== this.generation) return;
    this.generation += 1;
    this.socket = undefined;
    this.clearConnectionTimers();
    this.replaying = false;
    for (const item of this.outbox.values()) item.inflight = false;
    if (!this.wanted) return this.setState({ status: 'idle' });
    if (info.code === CLOSE_CODES.session_revoked) {
      this.stop('session_revoked', new ChatError('session_revoked', 'The session was revoked'));
      void this.session.revoked();
      return;
    }
    if (!info.opened) {
      const r = info.refusal;
      const error = r
        ? new ChatError(r.code ?? `http_${r.status}`, `WebSocket handshake refused: ${r.status}`, {
            status: r.status,
            retryAfter: r.retryAfter,
          })
        : new ChatError('handshake_refused', 'The WebSocket could not be opened');
      if (r?.status === 401) return this.stop('unauthorized', error);
      if (r?.status === 403) return this.stop('forbidden', error);
      return this.retry({ error, closeCode: info.code });
    }
    this.retry({ closeCode: info.code });
  }

  private retry(why: { error?: ChatError; closeCode?: number }): void {
    const delayMs = this.backoff.next(why.error?.retryAfter);
    this.setState({
      status: 'reconnecting',
      attempt: this.backoff.attempt,
      delayMs,
      closeCode: why.closeCode,
      error: why.error,
    });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.wanted && !this.closed) void this.attempt();
    }, delayMs);
  }

  /** Stops for good: until the application calls connect() again. */
  private stop(reason: StopReason, error?: ChatError): void {
    this.wanted = false;
    this.generation += 1;
    this.dropSocket(1000, 'client_stop');
    this.setState({ status: 'stopped', reason, error });
  }

  private dropSocket(code: number, reason: string): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.attempting = false;
    this.clearConnectionTimers();
    this.replaying = false;
    for (const item of this.outbox.values()) item.inflight = false;
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(code, reason);
  }

  private clearConnectionTimers(): void {
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    if (this.pongTimer !== undefined) clearTimeout(this.pongTimer);
    this.pingTimer = undefined;
    this.pongTimer = undefined;
  }

  // ---- Internals: frames ----

  private onText(text: string, generation: number): void {
    if (generation !== this.generation) return;
    if (this.pongTimer !== undefined) clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch {
      return;
    }
    if (typeof frame !== 'object' || frame === null) return;
    if (STREAM.has(frame.type)) return this.onStream(frame as StreamFrame);
    if (SIGNALS.has(frame.type)) {
      if (frame.type === 'receipt') this.emit('receipt', frame);
      else if (frame.type === 'typing') this.emit('typing', frame);
      else if (frame.type === 'presence') this.emit('presence', frame);
      return;
    }
    if (frame.type === 'synced') return this.onSynced(frame);
    if (frame.type === 'ack') return this.onAck(frame);
    if (frame.type === 'error') return this.onErrorFrame(frame);
  }

  /** A stream event: reported unless already seen; the cursor follows it. */
  private onStream(frame: StreamFrame): void {
    const id = frame.id;
    if (typeof id !== 'string') return;
    if (this.floor !== null && compareIds(id, this.floor) <= 0) return;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    if (this.seen.size > 4096) this.prune(1024);
    this.cursor = maxId(this.cursor, id);
    this.saveCursor();
    this.emit('stream', frame);
    switch (frame.type) {
      case 'message':
        return this.emit('message', frame);
      case 'edit':
        return this.emit('edit', frame);
      case 'delete':
        return this.emit('delete', frame);
      case 'conversation':
        return this.emit('conversation', frame);
    }
  }

  private onSynced(frame: SyncedFrame): void {
    this.replaying = false;
    if (frame.lastId !== null) {
      this.cursor = maxId(this.cursor, frame.lastId);
      this.floor = maxId(this.floor, frame.lastId);
      this.prune();
      this.saveCursor();
    }
    if (this.currentState.status !== 'online') {
      this.backoff.reset();
      this.setState({ status: 'online' });
    }
    this.emit('synced', frame);
    this.flushReads();
    for (const item of this.outbox.values()) this.transmit(item);
    if (this.syncAgain) {
      this.syncAgain = false;
      this.requestSync();
    }
  }

  /** Replays the stream after the cursor (one at a time: a second request waits for `synced`). */
  private requestSync(): void {
    if (!this.socket) return;
    if (this.replaying) {
      this.syncAgain = true;
      return;
    }
    this.syncs += 1;
    if (
      this.socket.send(
        JSON.stringify({
          type: 'sync',
          after: this.cursor,
          clientId: `${SYNC_PREFIX}${this.syncs}`,
        }),
      )
    )
      this.replaying = true;
  }

  private onAck(frame: AckFrame): void {
    const item = frame.clientId === undefined ? undefined : this.outbox.get(frame.clientId);
    if (!item) return;
    this.remove(item);
    const result = { id: frame.id, createdAt: frame.createdAt, clientId: item.entry.clientId };
    for (const w of item.waiters) w.resolve(result);
    item.waiters = [];
    this.emit('sent', { clientId: item.entry.clientId, ack: frame, frame: item.entry.frame });
    if (this.o.syncOwnSends ?? true) this.requestSync();
  }

  private onErrorFrame(frame: ErrorFrame): void {
    const clientId = frame.clientId;
    const error = new ChatError(frame.code, frame.message, { clientId });
    if (clientId?.startsWith(SYNC_PREFIX)) {
      // Only "a sync is already running": run ours after it.
      this.syncAgain = true;
      return;
    }
    const item = clientId === undefined ? undefined : this.outbox.get(clientId);
    if (!item) return this.emit('error', error);
    item.inflight = false;
    if (TRANSIENT.has(frame.code)) {
      // Nothing was stored: send the same frame again, with the same clientId, a little later.
      item.retries += 1;
      const delay =
        Math.min(10_000, 250 * 2 ** Math.min(item.retries, 6)) * (0.5 + Math.random() / 2);
      if (item.retryTimer !== undefined) clearTimeout(item.retryTimer);
      item.retryTimer = setTimeout(() => {
        item.retryTimer = undefined;
        this.transmit(item);
      }, delay);
      return;
    }
    this.remove(item);
    this.settle(item, error);
    this.emit('failed', { clientId: item.entry.clientId, error, frame: item.entry.frame });
  }

  // ---- Internals: the outbox ----

  private queue(frame: OutboxFrame, content?: string): Promise<SendResult> {
    const user = this.session.user;
    if (this.closed) return Promise.reject(new ChatError('closed', 'The client is closed'));
    if (!user) return Promise.reject(new ChatError('signed_out', 'Not signed in'));
    if (content !== undefined) {
      const length = [...content].length;
      if (length < 1 || length > CONTENT_MAX)
        return Promise.reject(
          new ChatError('invalid_message', `content must be 1 to ${CONTENT_MAX} characters`),
        );
    }
    const existing = this.outbox.get(frame.clientId);
    if (existing)
      return new Promise((resolve, reject) => existing.waiters.push({ resolve, reject }));
    const entry: OutboxEntry = {
      userId: user.id,
      clientId: frame.clientId,
      frame,
      queuedAt: Date.now(),
      seq: this.seq++,
    };
    const item: OutboxItem = {
      entry,
      inflight: false,
      waiters: [],
      retries: 0,
      persisted: this.storage.putOutbox(entry).catch((e: unknown) => this.storageError(e)),
    };
    const promise = new Promise<SendResult>((resolve, reject) =>
      item.waiters.push({ resolve, reject }),
    );
    this.outbox.set(frame.clientId, item);
    this.transmit(item);
    return promise;
  }

  /** Sends an outbox entry if connected and caught up, and not already on its way. */
  private transmit(item: OutboxItem): void {
    if (item.inflight || item.retryTimer !== undefined) return;
    if (this.currentState.status !== 'online' || !this.socket) return;
    if (this.outbox.get(item.entry.clientId) !== item) return;
    if (this.socket.send(JSON.stringify(item.entry.frame))) item.inflight = true;
  }

  private remove(item: OutboxItem): void {
    if (item.retryTimer !== undefined) clearTimeout(item.retryTimer);
    item.retryTimer = undefined;
    const { userId, clientId } = item.entry;
    if (this.outbox.get(clientId) === item) this.outbox.delete(clientId);
    void item.persisted
      .then(() => this.storage.deleteOutbox(userId, clientId))
      .catch((e: unknown) => this.storageError(e));
  }

  private settle(item: OutboxItem, error: ChatError): void {
    for (const w of item.waiters) w.reject(error);
    item.waiters = [];
  }

  private flushReads(): void {
    for (const [key, frame] of this.pendingReads) {
      if (!this.socket?.send(JSON.stringify(frame))) return;
      this.pendingReads.delete(key);
    }
  }

  // ---- Internals: per-user state ----

  private onSignedIn(user: User): void {
    if (this.userId !== user.id) {
      // Another user: nothing of the previous one's is sent as this one.
      const error = new ChatError('signed_out', 'Another user signed in');
      for (const item of this.outbox.values()) this.settle(item, error);
      this.outbox = new Map();
      this.cursor = null;
      this.floor = null;
      this.seen.clear();
      this.pendingReads.clear();
      this.userId = user.id;
      this.ready = this.load(user.id);
    }
    this.emit('signedIn', user);
    if (this.wanted && !this.socket && !this.attempting && this.retryTimer === undefined)
      void this.attempt();
  }

  private onSignedOut(reason: SignOutReason): void {
    const userId = this.userId;
    if (this.currentState.status !== 'stopped')
      this.stop(reason === 'session_revoked' ? 'session_revoked' : 'signed_out');
    if (reason === 'logout' && userId !== null) {
      const error = new ChatError('signed_out', 'Logged out');
      for (const item of this.outbox.values()) {
        if (item.retryTimer !== undefined) clearTimeout(item.retryTimer);
        this.settle(item, error);
      }
      this.outbox = new Map();
      this.cursor = null;
      this.floor = null;
      this.seen.clear();
      this.userId = null;
      this.pendingReads.clear();
      this.storage.clearUser(userId).catch((e: unknown) => this.storageError(e));
    }
    this.emit('signedOut', { reason });
  }

  /** Loads the user's cursor and stored outbox; stored entries go before any queued since. */
  private async load(userId: string): Promise<void> {
    try {
      const [cursor, entries] = await Promise.all([
        this.storage.loadCursor(userId),
        this.storage.loadOutbox(userId),
      ]);
      if (this.userId !== userId) return;
      this.cursor = maxId(this.cursor, cursor);
      const restored = new Map<string, OutboxItem>();
      for (const entry of entries) {
        if (this.outbox.has(entry.clientId)) continue;
        this.seq = Math.max(this.seq, entry.seq + 1);
        restored.set(entry.clientId, {
          entry,
          inflight: false,
          waiters: [],
          retries: 0,
          persisted: Promise.resolve(),
        });
      }
      for (const [clientId, item] of this.outbox) restored.set(clientId, item);
      this.outbox = restored;
    } catch (e) {
      this.storageError(e);
    }
  }

  /** Writes the cursor, one write at a time, the newest value last. */
  private saveCursor(): void {
    const userId = this.userId;
    const cursor = this.cursor;
    if (userId === null || cursor === null) return;
    if (this.savingCursor) {
      this.cursorDirty = true;
      return;
    }
    this.savingCursor = this.storage
      .saveCursor(userId, cursor)
      .catch((e: unknown) => this.storageError(e))
      .finally(() => {
        this.savingCursor = undefined;
        if (this.cursorDirty) {
          this.cursorDirty = false;
          this.saveCursor();
        }
      });
  }

  /** Forgets seen ids at or below the floor; with `keep`, raises the floor to keep that many. */
  private prune(keep?: number): void {
    if (keep !== undefined && this.seen.size > keep) {
      const ids = [...this.seen].sort(compareIds);
      this.floor = maxId(this.floor, ids[ids.length - keep - 1] ?? null);
    }
    if (this.floor === null) return;
    for (const id of this.seen) if (compareIds(id, this.floor) <= 0) this.seen.delete(id);
  }

  private storageError(e: unknown): void {
    this.emit(
      'error',
      e instanceof ChatError
        ? e
        : new ChatError('storage_error', 'Client storage failed', { cause: e }),
    );
  }
}

export interface Page {
  limit?: number;
  before?: string;
}

const enc = encodeURIComponent;

function targetKey(target: Target): string {
  return 'conversationId' in target
    ? `c:${target.conversationId}`
    : `u:${target.with.toLowerCase()}`;
}
