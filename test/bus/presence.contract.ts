// The Presence contract: one suite that every Presence implementation must pass, case by case
// against the guarantees in the comment on the Presence interface (src/bus/presence.ts). An
// implementation's test file calls `presenceContract` with a harness that makes its nodes. The
// one-node cases run everywhere; the cases across nodes (or about shared state) run wherever the
// implementation has them, and an implementation skips one only by naming it with a reason.
import { afterEach, describe, expect, it } from 'vitest';
import type { Presence } from '../../src/bus/presence.js';
import { until } from './bus.contract.js';

export interface PresenceHarness<P extends Presence> {
  /**
   * `n` nodes of one deployment sharing their state, fresh for each call (isolated from other
   * calls and other test runs, e.g. by a random key prefix). With one node by definition, only
   * n = 1. The contract closes every node it opened after each case.
   */
  open(n: number): Promise<P[]>;
  /**
   * Resolves once the effects of `node`'s calls so far (online, offline, close) are visible from
   * every node, e.g. `RedisPresence.refresh()`, which runs after them on the node's connection.
   */
  settle(node: P): Promise<void>;
  /**
   * Cuts `node` off from the shared state for good, without closing it, as a crash or a network
   * partition would: the node stops keeping itself alive and cannot ask the shared state. Needed
   * by the cases `stoppedNode` and `unreachable`.
   */
  cutOff?(node: P): void | Promise<void>;
  /** The bound within which a node that stops stops counting on the others (`stoppedNode`). */
  stopBoundMs?: number;
}

/** The cases an implementation may skip (with a reason), and their titles. */
export const SKIPPABLE_CASES = {
  seenElsewhere: 'another node sees a user online once the effects are visible, and offline after',
  sharedUser: 'keeps a user online while another node still has them',
  orderElsewhere: 'another node sees one node’s online/offline calls applied in call order',
  closeElsewhere: 'close withdraws this node’s users on the other nodes, and only its own',
  stoppedNode: 'a node that stops stops counting within its bound; live nodes keep counting',
  unreachable: 'answers from this node’s connections, never rejecting, when shared state is gone',
} as const;
export type SkippableCase = keyof typeof SKIPPABLE_CASES;

export interface PresenceContractOptions {
  /** The cases this implementation does not run, each with the reason. */
  skip?: Partial<Record<SkippableCase, string>>;
}

/** The users `toggle` reports on; after it, user i is online iff i is odd. */
const users = Array.from({ length: 40 }, (_, i) => `u${i}`);
const expectedOnline = (i: number) => i % 2 === 1;

/**
 * Reports on `node` many balanced online/offline calls, interleaved across users: user i goes
 * online and offline i times over, then online once more if i is odd. Applied out of order (an
 * offline before the online it follows), some user would end in the wrong state.
 */
function toggle(node: Presence): void {
  for (let round = 0; round < users.length; round++) {
    const active = users.filter((_, i) => round < i);
    for (const user of active) node.online(user);
    for (const user of active) node.offline(user);
  }
  users.forEach((user, i) => {
    if (expectedOnline(i)) node.online(user);
  });
}

async function expectToggled(observer: Presence): Promise<void> {
  const answers = await Promise.all(users.map((user) => observer.isOnline(user)));
  expect(answers).toEqual(users.map((_, i) => expectedOnline(i)));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

export function presenceContract<P extends Presence>(
  name: string,
  harness: PresenceHarness<P>,
  options: PresenceContractOptions = {},
): void {
  describe(`Presence contract: ${name}`, () => {
    const opened: P[] = [];
    const open = async (n: number) => {
      const nodes = await harness.open(n);
      expect(nodes).toHaveLength(n);
      opened.push(...nodes);
      return nodes;
    };
    const settle = (...nodes: P[]) => Promise.all(nodes.map((node) => harness.settle(node)));
    const cutOff = async (node: P) => {
      if (!harness.cutOff) throw new Error(`${name}: this case needs harness.cutOff (or a skip)`);
      await harness.cutOff(node);
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((node) => node.close()));
    });

    /** A case of SKIPPABLE_CASES: run, or skipped with its reason in the title. */
    const skippable = (id: SkippableCase, body: () => Promise<void>) => {
      const reason = options.skip?.[id];
      if (reason) it.skip(`${SKIPPABLE_CASES[id]} (skipped: ${reason})`, body);
      else it(SKIPPABLE_CASES[id], body);
    };

    describe('one node', () => {
      it('is online at once on its own node, and offline once it reports the user gone', async () => {
        const [a] = await open(1);
        expect(a!.description).toMatch(/\S/);
        expect(await a!.isOnline('u1')).toBe(false);
        a!.online('u1');
        const atOnce = a!.isOnline('u1'); // asked before anything else could run
        a!.online('u2');
        expect(await atOnce).toBe(true);
        expect(await a!.isOnline('u2')).toBe(true);
        expect(await a!.isOnline('u3')).toBe(false);
        a!.offline('u1');
        await settle(a!);
        expect(await a!.isOnline('u1')).toBe(false);
        expect(await a!.isOnline('u2')).toBe(true);
        // Balanced again: a second connection period of the same user.
        a!.online('u1');
        expect(await a!.isOnline('u1')).toBe(true);
      });

      it('applies its online/offline calls in call order', async () => {
        const [a] = await open(1);
        toggle(a!);
        await settle(a!);
        await expectToggled(a!);
      });

      it('close withdraws its users, is safe to call twice, and ignores later calls', async () => {
        const [a] = await open(1);
        a!.online('u1');
        a!.online('u2');
        a!.online('u3');
        a!.offline('u3');
        await settle(a!);
        expect(await a!.isOnline('u2')).toBe(true);
        await expect(Promise.all([a!.close(), a!.close()])).resolves.toEqual([
          undefined,
          undefined,
        ]);
        await expect(a!.close()).resolves.toBeUndefined();
        await settle(a!);
        for (const user of ['u1', 'u2', 'u3']) expect(await a!.isOnline(user)).toBe(false);
        // Ignored: neither call throws, and neither changes what the node answers.
        a!.online('u4');
        a!.offline('u2');
        a!.online('u2');
        expect(await a!.isOnline('u4')).toBe(false);
        expect(await a!.isOnline('u2')).toBe(false);
        await settle(a!);
        expect(await a!.isOnline('u4')).toBe(false);
        expect(await a!.isOnline('u2')).toBe(false);
      });

      it('isOnline resolves to a boolean for any user, before and after close', async () => {
        const [a] = await open(1);
        const odd = ['', 'ünïcode ✓', 'with:colon', '*', 'x'.repeat(200)];
        a!.online(odd[1]!);
        for (const user of odd) await expect(a!.isOnline(user)).resolves.toBe(user === odd[1]);
        await a!.close();
        for (const user of odd) await expect(a!.isOnline(user)).resolves.toBe(false);
      });
    });

    describe('several nodes', () => {
      skippable('seenElsewhere', async () => {
        const [a, b] = await open(2);
        expect(await b!.isOnline('u1')).toBe(false);
        a!.online('u1');
        expect(await a!.isOnline('u1')).toBe(true); // at once on its own node
        await settle(a!);
        expect(await b!.isOnline('u1')).toBe(true);
        a!.offline('u1');
        await settle(a!);
        expect(await b!.isOnline('u1')).toBe(false);
        expect(await a!.isOnline('u1')).toBe(false);
      });

      skippable('sharedUser', async () => {
        const [a, b, c] = await open(3);
        a!.online('u1');
        b!.online('u1');
        await settle(a!, b!);
        a!.offline('u1');
        await settle(a!);
        expect(await c!.isOnline('u1')).toBe(true);
        expect(await a!.isOnline('u1')).toBe(true); // b still has them
        b!.offline('u1');
        await settle(b!);
        expect(await c!.isOnline('u1')).toBe(false);
        expect(await a!.isOnline('u1')).toBe(false);
      });

      skippable('orderElsewhere', async () => {
        const [a, b] = await open(2);
        toggle(a!);
        await settle(a!);
        await expectToggled(b!);
        await expectToggled(a!);
      });

      skippable('closeElsewhere', async () => {
        const [a, b, c] = await open(3);
        a!.online('u1'); // also on b
        a!.online('u2'); // on a only
        a!.online('u3');
        a!.offline('u3');
        b!.online('u1');
        await settle(a!, b!);
        expect(await c!.isOnline('u2')).toBe(true);
        await a!.close();
        await a!.close();
        await settle(a!);
        expect(await c!.isOnline('u2')).toBe(false);
        expect(await b!.isOnline('u2')).toBe(false);
        expect(await c!.isOnline('u3')).toBe(false);
        expect(await c!.isOnline('u1')).toBe(true); // b's connection still counts
        a!.online('u4'); // ignored after close
        await settle(a!);
        expect(await c!.isOnline('u4')).toBe(false);
        b!.offline('u1');
        await settle(b!);
        expect(await c!.isOnline('u1')).toBe(false);
      });

      skippable('stoppedNode', async () => {
        const bound = harness.stopBoundMs;
        if (bound === undefined) throw new Error(`${name}: this case needs harness.stopBoundMs`);
        const [a, b, c] = await open(3);
        a!.online('u1');
        c!.online('u2');
        await settle(a!, c!);
        expect(await b!.isOnline('u1')).toBe(true);
        const stoppedAt = Date.now();
        await cutOff(a!);
        await until(
          async () => !(await b!.isOnline('u1')),
          'the stopped node to stop counting',
          bound + 10_000,
        );
        const slackMs = 500; // polling and round trips
        expect(Date.now() - stoppedAt).toBeLessThanOrEqual(bound + slackMs);
        // A live node keeps counting past the bound: it keeps itself alive.
        await sleep(stoppedAt + bound + slackMs - Date.now());
        expect(await b!.isOnline('u2')).toBe(true);
        expect(await b!.isOnline('u1')).toBe(false);
      });

      skippable('unreachable', async () => {
        const [a, b] = await open(2);
        a!.online('u1');
        b!.online('u3');
        await settle(a!, b!);
        expect(await a!.isOnline('u3')).toBe(true);
        await cutOff(a!);
        expect(await a!.isOnline('u1')).toBe(true);
        expect(await a!.isOnline('u2')).toBe(false);
        expect(await a!.isOnline('u3')).toBe(false); // only this node's connections count
        const many = await Promise.all(
          Array.from({ length: 20 }, (_, i) => a!.isOnline(i % 2 ? 'u1' : `x${i}`)),
        );
        expect(many).toEqual(Array.from({ length: 20 }, (_, i) => i % 2 === 1));
        // online/offline neither throw nor stop the node answering for its own connections.
        a!.online('u4');
        a!.offline('u1');
        expect(await a!.isOnline('u4')).toBe(true);
        expect(await a!.isOnline('u1')).toBe(false);
        await settle(a!); // settles nothing, but must not reject either
        expect(await a!.isOnline('u4')).toBe(true);
        await expect(a!.close()).resolves.toBeUndefined();
        await expect(a!.close()).resolves.toBeUndefined();
        expect(await a!.isOnline('u4')).toBe(false);
      });
    });
  });
}
