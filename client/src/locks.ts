// Mutual exclusion for token refreshes. The server revokes a session whose spent refresh token
// is presented again, so two refreshes of one session racing with the same token sign the user
// out: every client of one session must refresh one at a time, within a process and across the
// tabs of a browser. A RefreshLock runs a function while holding a named lock.
//
// - webLocks(): the Web Locks API (navigator.locks), in every current browser: exact, and
//   released by the browser when a tab dies.
// - broadcastChannelLock(): for runtimes with BroadcastChannel but no Web Locks; a claim-and-wait
//   protocol on a channel, good when the tabs answer within `windowMs`.
// - processLock(): within one JavaScript realm only (one tab, one Node process). Clients that
//   share one processLock() instance share the lock.
// - defaultLock(): the first of these that the runtime has, the process one shared by every
//   client of the realm.

import { runtimeGlobal } from './runtime.js';

export interface RefreshLock {
  /** Runs `fn` holding the lock `name`; resolves or rejects as `fn` does. */
  run<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Releases what the lock holds open (a channel); optional. */
  close?(): void;
}

/** The part of the Web Locks API used here (navigator.locks). */
export interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

/** The part of BroadcastChannel used here. */
export interface BroadcastChannelLike {
  postMessage(message: unknown): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  close(): void;
}
export type BroadcastChannelConstructor = new (name: string) => BroadcastChannelLike;

/** One lock per name within this realm: each run waits for the previous one to settle. */
export function processLock(): RefreshLock {
  const tails = new Map<string, Promise<unknown>>();
  return {
    run<T>(name: string, fn: () => Promise<T>): Promise<T> {
      const previous = tails.get(name) ?? Promise.resolve();
      const result = previous.then(fn, fn);
      const tail = result.then(
        () => undefined,
        () => undefined,
      );
      tails.set(name, tail);
      void tail.then(() => {
        if (tails.get(name) === tail) tails.delete(name);
      });
      return result;
    },
  };
}

/** The Web Locks API: an exclusive lock per name across every tab and worker of the origin. */
export function webLocks(locks: LockManagerLike): RefreshLock {
  return { run: (name, fn) => locks.request(name, fn) };
}

export interface BroadcastChannelLockOptions {
  /** The channel's name; every participant must use the same (default "chat-client-locks"). */
  channel?: string;
  /** The BroadcastChannel constructor; globalThis.BroadcastChannel by default. */
  BroadcastChannel?: BroadcastChannelConstructor;
  /** How long a claim waits for competing claims, in ms (default 60). */
  windowMs?: number;
  /** How long a loser waits for a release before claiming again (a holder that died), in ms. */
  staleMs?: number;
}

type LockMessage =
  | { t: 'claim'; name: string; id: string }
  | { t: 'held'; name: string; id: string }
  | { t: 'release'; name: string; id: string };

/**
 * A lock over BroadcastChannel, for runtimes without Web Locks. To take it, a participant posts a
 * claim with a random id and listens for `windowMs`: it has the lock unless another claim with a
 * smaller id or a holder's "held" answer came in meanwhile; the losers wait for the holder's
 * release (or `staleMs`, for a holder that went away) and claim again. It relies on messages
 * arriving within the window, which busy tabs may exceed: so a refresh also re-reads the shared
 * token storage once it has the lock, and skips the refresh if another tab has already done it.
 */
export function broadcastChannelLock(options: BroadcastChannelLockOptions = {}): RefreshLock {
  const Channel =
    options.BroadcastChannel ?? runtimeGlobal<BroadcastChannelConstructor>('BroadcastChannel');
  if (!Channel) throw new TypeError('BroadcastChannel is not available in this runtime');
  const windowMs = options.windowMs ?? 60;
  const staleMs = options.staleMs ?? 10_000;
  const channel = new Channel(options.channel ?? 'chat-client-locks');
  (channel as { unref?: () => void }).unref?.();
  const local = processLock();
  const held = new Map<string, string>();
  const contests = new Set<{ name: string; id: string; lost: boolean }>();
  const releases = new Map<string, Set<() => void>>();
  const random = () => `${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;

  const released = (name: string): void => {
    const waiting = releases.get(name);
    releases.delete(name);
    for (const wake of waiting ?? []) wake();
  };

  channel.onmessage = (event) => {
    const m = event.data as LockMessage;
    if (typeof m !== 'object' || m === null || typeof m.name !== 'string') return;
    if (m.t === 'claim') {
      const mine = held.get(m.name);
      if (mine !== undefined) channel.postMessage({ t: 'held', name: m.name, id: mine });
      for (const c of contests) if (c.name === m.name && m.id < c.id) c.lost = true;
    } else if (m.t === 'held') {
      for (const c of contests) if (c.name === m.name) c.lost = true;
    } else if (m.t === 'release') {
      released(m.name);
    }
  };

  const waitForRelease = (name: string) =>
    new Promise<void>((resolve) => {
      let set = releases.get(name);
      if (!set) releases.set(name, (set = new Set()));
      const timer = setTimeout(wake, staleMs);
      function wake() {
        clearTimeout(timer);
        set?.delete(wake);
        resolve();
      }
      set.add(wake);
    });

  const acquire = async (name: string): Promise<string> => {
    for (;;) {
      const contest = { name, id: random(), lost: false };
      contests.add(contest);
      channel.postMessage({ t: 'claim', name, id: contest.id });
      await new Promise((resolve) => setTimeout(resolve, windowMs));
      contests.delete(contest);
      if (!contest.lost) {
        held.set(name, contest.id);
        return contest.id;
      }
      await waitForRelease(name);
    }
  };

  return {
    run<T>(name: string, fn: () => Promise<T>): Promise<T> {
      return local.run(name, async () => {
        const id = await acquire(name);
        try {
          return await fn();
        } finally {
          held.delete(name);
          channel.postMessage({ t: 'release', name, id });
        }
      });
    },
    close() {
      channel.close();
    },
  };
}

let shared: RefreshLock | undefined;

/** navigator.locks when present, else a BroadcastChannel lock, else the realm's process lock. */
export function defaultLock(): RefreshLock {
  const nav = runtimeGlobal<{ locks?: LockManagerLike }>('navigator');
  if (nav?.locks && typeof nav.locks.request === 'function') return webLocks(nav.locks);
  if (shared) return shared;
  const hasChannel = typeof runtimeGlobal('BroadcastChannel');
  const isBrowser = typeof runtimeGlobal('document') === 'object';
  // In a browser without Web Locks, tabs coordinate over a channel; elsewhere (Node) one process
  // is the whole world, and a channel would only add its window to every refresh.
  shared = isBrowser && hasChannel === 'function' ? broadcastChannelLock() : processLock();
  return shared;
}
