// @chat-server/client: a typed client of the chat server for browsers and Node 20+.
export {
  ChatClient,
  type ChatClientOptions,
  type ChatEvents,
  type ConnectionState,
  type Page,
  type SendResult,
  type StopReason,
  type Target,
} from './client.js';
export { ChatError, type ChatErrorCode, type ClientErrorCode } from './errors.js';
export type { SignOutReason } from './session.js';
export type { BackoffOptions } from './backoff.js';
export type { FetchLike } from './http.js';
export type { WebSocketConstructor } from './socket.js';
export {
  broadcastChannelLock,
  defaultLock,
  processLock,
  webLocks,
  type BroadcastChannelLockOptions,
  type LockManagerLike,
  type RefreshLock,
} from './locks.js';
export {
  memoryTokenStore,
  webStorageTokenStore,
  type StorageLike,
  type StoredSession,
  type TokenStore,
} from './tokens.js';
export {
  memoryStorage,
  type ClientStorage,
  type OutboxEntry,
  type OutboxFrame,
} from './storage.js';
export { indexedDbStorage, type IndexedDbStorageOptions } from './indexeddb.js';
export { compareIds } from './ids.js';
export * from './protocol.js';
