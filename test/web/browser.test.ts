// The browser client end to end, in Debian's Chromium: people sign up in separate browser
// contexts (separate storage, like separate browsers) and chat through a real server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';
import {
  account,
  connect,
  PASSWORD,
  startServer,
  uniqueName,
  type TestServer,
} from '../helpers/server.js';
import {
  chromiumAvailable,
  contents,
  PHONE,
  ensureWebBuild,
  launchChromium,
  message,
  openAs,
  openConversation,
  openDirect,
  signIn,
  signUp,
  write,
  type Person,
} from '../helpers/browser.js';

const available = chromiumAvailable();

/** axe-core's serious and critical findings on the page as it is, one line each. */
async function accessibilityProblems(page: Page): Promise<string[]> {
  const { violations } = await new AxeBuilder({ page }).analyze();
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map(
      (v) =>
        `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
    );
}
const WAIT = { timeout: 15_000 };
const poll = { timeout: 15_000, interval: 100 };

// A real browser on a loaded 2-core machine: a scenario that times out waiting for the page is
// run again (twice at most) before it counts as failed; its assertions are the same each time.
describe.skipIf(!available)('the browser client in Chromium', { retry: 2 }, () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    await ensureWebBuild();
    // Generous message limits: one test writes a long history at once.
    server = await startServer({ RATE_MESSAGES_BURST: '1000', RATE_MESSAGES_PER_SEC: '1000' });
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const person = async (prefix: string): Promise<Person> => {
    const p = await openAs(browser, server.url, uniqueName(prefix).slice(0, 20));
    await signUp(p);
    return p;
  };

  it('alice writes, bob sees it live; alice sees "Read" once bob has it open', async () => {
    const alice = await person('alice');
    const bob = await person('bob');
    try {
      await openDirect(alice, bob.name);
      await write(alice, 'hello bob');
      // Sending, then sent (acked), then delivered (bob's page got it, not yet opened).
      await message(alice, 'hello bob')
        .and(
          alice.page.locator(
            '[data-status="sending"], [data-status="sent"], [data-status="delivered"]',
          ),
        )
        .waitFor(WAIT);

      // Bob's list shows the new conversation with one unread message, live.
      const item = bob.page.getByRole('button', { name: new RegExp(`^${alice.name}`) });
      await item.waitFor(WAIT);
      await bob.page.getByLabel('1 unread').waitFor(WAIT);
      await message(alice, 'hello bob')
        .and(alice.page.locator('[data-status="delivered"]'))
        .waitFor(WAIT);
      expect(await message(alice, 'hello bob').locator('.status').textContent()).toContain(
        'Delivered',
      );
      expect(await item.textContent()).toContain('hello bob');

      await openConversation(bob, alice.name);
      expect(await contents(bob)).toEqual(['hello bob']);
      await message(alice, 'hello bob')
        .and(alice.page.locator('[data-status="read"]'))
        .waitFor(WAIT);

      // Typing shows on the other side; the reply arrives live.
      await bob.page.getByLabel('Message', { exact: true }).pressSequentially('hi al');
      await alice.page.getByText(`${bob.name} is typing…`).waitFor(WAIT);
      await bob.page.getByLabel('Message', { exact: true }).pressSequentially('ice');
      await bob.page.getByLabel('Message', { exact: true }).press('Enter');
      await expect.poll(() => contents(alice), poll).toEqual(['hello bob', 'hi alice']);
    } finally {
      await alice.context.close();
      await bob.context.close();
    }
  }, 90_000);

  it('bob goes offline; alice writes three messages; bob comes back and sees them in order', async () => {
    const alice = await person('alice');
    const bob = await person('bob');
    try {
      await openDirect(alice, bob.name);
      await write(alice, 'before');
      await openConversation(bob, alice.name);
      await expect.poll(() => contents(bob), poll).toEqual(['before']);

      await bob.context.setOffline(true);
      await bob.page.getByText('You are offline.').waitFor(WAIT);
      for (const text of ['one', 'two', 'three']) await write(alice, text);
      await expect
        .poll(() => alice.page.locator('.message.mine[data-status="sent"]').count(), poll)
        .toBe(3);
      expect(await contents(bob)).toEqual(['before']);

      // Bob writes while offline: it waits in the outbox, shown as sending.
      await write(bob, 'written offline');
      await message(bob, 'written offline')
        .and(bob.page.locator('[data-status="sending"]'))
        .waitFor(WAIT);

      await bob.context.setOffline(false);
      await expect
        .poll(() => contents(bob), poll)
        .toEqual(['before', 'one', 'two', 'three', 'written offline']);
      await message(bob, 'written offline')
        .and(bob.page.locator('[data-status="read"]'))
        .waitFor(WAIT);
      await expect
        .poll(() => contents(alice), poll)
        .toEqual(['before', 'one', 'two', 'three', 'written offline']);
      // Bob has it open: alice's three are read.
      await expect
        .poll(() => alice.page.locator('.message.mine[data-status="read"]').count(), poll)
        .toBe(4);
    } finally {
      await alice.context.close();
      await bob.context.close();
    }
  }, 90_000);

  it('a group of three: created, everyone writes, everyone sees every message', async () => {
    const [alice, bob, carol] = await Promise.all([
      person('alice'),
      person('bob'),
      person('carol'),
    ]);
    try {
      await alice.page.getByRole('button', { name: 'New group' }).click();
      await alice.page.getByLabel('Name').fill('team');
      await alice.page.getByLabel('Members').fill(`${bob.name}, ${carol.name}`);
      await alice.page.getByRole('button', { name: 'Create group' }).click();
      await alice.page.getByRole('heading', { name: 'team', level: 2 }).waitFor(WAIT);
      await write(alice, 'hi team');

      await openConversation(bob, 'team');
      await expect.poll(() => contents(bob), poll).toEqual(['hi team']);
      await write(bob, 'hi from bob');
      await openConversation(carol, 'team');
      await expect.poll(() => contents(carol), poll).toEqual(['hi team', 'hi from bob']);
      await write(carol, 'and carol');

      const all = ['hi team', 'hi from bob', 'and carol'];
      for (const p of [alice, bob, carol]) await expect.poll(() => contents(p), poll).toEqual(all);
      // Everyone has read everything: alice's message is read by both others.
      await message(alice, 'hi team').and(alice.page.locator('[data-status="read"]')).waitFor(WAIT);
      // Senders are named in a group.
      expect(await alice.page.locator('.message .sender').allTextContents()).toEqual([
        bob.name,
        carol.name,
      ]);

      // Alice removes carol; carol's list loses the group.
      await alice.page.getByRole('button', { name: 'Members', exact: true }).click();
      await alice.page.getByRole('button', { name: `Remove ${carol.name}` }).click();
      await alice.page
        .getByRole('dialog')
        .getByText(carol.name)
        .waitFor({ state: 'detached', ...WAIT });
      await alice.page.getByRole('button', { name: 'Close' }).click();
      await carol.page
        .getByRole('navigation', { name: 'Conversation list' })
        .getByRole('button', { name: /^team/ })
        .waitFor({ state: 'detached', ...WAIT });
    } finally {
      await Promise.all([alice, bob, carol].map((p) => p.context.close()));
    }
  }, 120_000);

  it('a reload keeps the session and the unsent outbox, which goes out once', async () => {
    const alice = await person('alice');
    const bob = await person('bob');
    try {
      await openDirect(bob, alice.name);
      await write(bob, 'first');
      await message(bob, 'first')
        .and(bob.page.locator('[data-status="sent"], [data-status="delivered"]'))
        .waitFor(WAIT);

      // The server cannot be reached for a WebSocket: bob's message waits in the outbox.
      await bob.page.route('**/websocket/ticket', (route) => route.abort('internetdisconnected'));
      await bob.page.evaluate("window.dispatchEvent(new Event('offline'))");
      await write(bob, 'kept across a reload');
      await message(bob, 'kept across a reload')
        .and(bob.page.locator('[data-status="sending"]'))
        .waitFor(WAIT);

      await bob.page.reload();
      await bob.page.getByRole('button', { name: 'Sign out' }).waitFor(WAIT);
      await bob.page
        .getByText(/reconnecting|Connection lost/i)
        .first()
        .waitFor(WAIT);
      await openConversation(bob, alice.name);
      await message(bob, 'kept across a reload')
        .and(bob.page.locator('[data-status="sending"]'))
        .waitFor(WAIT);

      await bob.page.unroute('**/websocket/ticket');
      // Sooner than the backoff would (unless it already has).
      await bob.page
        .getByRole('button', { name: 'Retry now' })
        .click({ timeout: 3000 })
        .catch(() => {});
      await message(bob, 'kept across a reload')
        .and(bob.page.locator('[data-status="sent"], [data-status="delivered"]'))
        .waitFor(WAIT);

      await openConversation(alice, bob.name);
      await expect.poll(() => contents(alice), poll).toEqual(['first', 'kept across a reload']);
      await expect.poll(() => contents(bob), poll).toEqual(['first', 'kept across a reload']);
    } finally {
      await alice.context.close();
      await bob.context.close();
    }
  }, 90_000);

  it('edits and deletions, presence and last seen, blocking and unblocking', async () => {
    const alice = await person('alice');
    const bob = await person('bob');
    try {
      await openDirect(alice, bob.name);
      await alice.page.getByText('online').waitFor(WAIT);
      await write(alice, 'helo');
      await openConversation(bob, alice.name);
      await expect.poll(() => contents(bob), poll).toEqual(['helo']);

      // Edit: Enter saves; the other side sees the new text, marked edited.
      await message(alice, 'helo').hover();
      await message(alice, 'helo').getByRole('button', { name: 'Edit message' }).click();
      const editor = alice.page.getByLabel('Edit message', { exact: true });
      await expect.poll(() => editor.inputValue(), poll).toBe('helo');
      await editor.fill('hello');
      await editor.press('Enter');
      await expect.poll(() => contents(bob), poll).toEqual(['hello']);
      await message(bob, 'hello').getByText('edited').waitFor(WAIT);

      // Delete, after confirming: a tombstone on both sides.
      await message(alice, 'hello').hover();
      await message(alice, 'hello').getByRole('button', { name: 'Delete message' }).click();
      await alice.page.getByRole('button', { name: 'Delete', exact: true }).click();
      await expect.poll(() => contents(bob), poll).toEqual(['Message deleted']);
      await expect.poll(() => contents(alice), poll).toEqual(['Message deleted']);

      // Bob leaves: alice sees him offline, with when he was last seen.
      await bob.page.close();
      await alice.page.getByText(/^last seen /).waitFor(WAIT);
      bob.page = await bob.context.newPage();
      await bob.page.goto('/');
      await alice.page.locator('.subtitle.presence[data-online="true"]').waitFor(WAIT);

      // Bob blocks alice: her messages stop reaching him, until he unblocks (and only later ones).
      await openConversation(bob, alice.name);
      await bob.page.getByRole('button', { name: 'Block', exact: true }).click();
      await bob.page.getByRole('button', { name: 'Unblock', exact: true }).waitFor(WAIT);
      await write(alice, 'while blocked');
      await message(alice, 'while blocked')
        .and(alice.page.locator('[data-status="sent"]'))
        .waitFor(WAIT);
      await bob.page.getByRole('button', { name: 'Unblock', exact: true }).click();
      await bob.page.getByRole('button', { name: 'Block', exact: true }).waitFor(WAIT);
      await write(alice, 'after unblocking');
      await expect.poll(() => contents(bob), poll).toEqual(['Message deleted', 'after unblocking']);
    } finally {
      await alice.context.close();
      await bob.context.close();
    }
  }, 90_000);

  it('loads older messages while scrolling up', async () => {
    // A history written before bob's browser signs in: it loads page by page, not by replay.
    const alice = await account(server, uniqueName('alice').slice(0, 20));
    const bobAccount = await account(server, uniqueName('bob').slice(0, 20));
    const ws = await connect(server, { token: alice.token });
    for (let i = 1; i <= 120; i++)
      ws.send({ receiver: bobAccount.username, content: `message ${i}`, clientId: `m-${i}` });
    await ws.next((f) => f.type === 'ack' && f.clientId === 'm-120', 15_000);
    ws.close();
    const bob = await openAs(browser, server.url, bobAccount.username);
    try {
      await signIn(bob);
      await bob.page.getByLabel('120 unread').waitFor(WAIT);

      await openConversation(bob, alice.username);
      await expect.poll(() => contents(bob).then((c) => c.at(-1)), poll).toBe('message 120');
      expect((await contents(bob)).length).toBe(50);
      const list = bob.page.getByLabel('Messages', { exact: true });
      for (const expected of [100, 120]) {
        await list.evaluate((el) => el.scrollTo({ top: 0 }));
        await expect.poll(async () => (await contents(bob)).length, poll).toBe(expected);
      }
      const all = await contents(bob);
      expect(all).toEqual(Array.from({ length: 120 }, (_, i) => `message ${i + 1}`));
      await bob.page
        .getByRole('button', { name: 'Load older messages' })
        .waitFor({ state: 'detached' });
    } finally {
      await bob.context.close();
    }
  }, 90_000);

  it('is accessible (axe: nothing serious or critical), on a desktop and a phone, by keyboard', async () => {
    const cspErrors: string[] = [];
    const watch = (p: Person) =>
      p.page.on('console', (m) => {
        if (m.type() === 'error' && /Content Security Policy/i.test(m.text()))
          cspErrors.push(m.text());
      });
    const bob = await person('bob');
    const alice = await openAs(browser, server.url, uniqueName('alice').slice(0, 20));
    watch(alice);
    try {
      expect(await accessibilityProblems(alice.page)).toEqual([]);
      await alice.page.getByRole('button', { name: 'Create an account' }).click();
      expect(await accessibilityProblems(alice.page)).toEqual([]);

      // Keyboard only: the form in tab order, Enter submits.
      await alice.page.getByLabel('Username').focus();
      await alice.page.keyboard.type(alice.name);
      await alice.page.keyboard.press('Tab');
      await alice.page.keyboard.type(PASSWORD);
      await alice.page.keyboard.press('Enter');
      await alice.page.getByRole('button', { name: 'Sign out' }).waitFor(WAIT);

      // Find bob and write to him by keyboard: the search field, its result, the composer.
      await alice.page.getByLabel('Find people').focus();
      await alice.page.keyboard.type(bob.name);
      await alice.page.getByRole('button', { name: `Message ${bob.name}` }).waitFor(WAIT);
      await alice.page.keyboard.press('Tab');
      await alice.page.keyboard.press('Enter');
      await alice.page.getByRole('heading', { name: bob.name, level: 2 }).waitFor(WAIT);
      await alice.page.keyboard.type('typed without a mouse');
      await alice.page.keyboard.press('Enter');
      await message(alice, 'typed without a mouse')
        .and(alice.page.locator('[data-status="sent"], [data-status="delivered"]'))
        .waitFor(WAIT);
      await openConversation(bob, alice.name);
      await write(bob, 'a reply');
      await expect.poll(() => contents(alice), poll).toEqual(['typed without a mouse', 'a reply']);
      expect(await accessibilityProblems(alice.page)).toEqual([]);

      // Dialogs: a new group, its members, the settings.
      await alice.page.getByRole('button', { name: 'New group' }).click();
      expect(await accessibilityProblems(alice.page)).toEqual([]);
      await alice.page.getByLabel('Name').fill('accessible');
      await alice.page.getByLabel('Members').fill(bob.name);
      await alice.page.keyboard.press('Enter');
      await alice.page.getByRole('heading', { name: 'accessible', level: 2 }).waitFor(WAIT);
      await alice.page.getByRole('button', { name: 'Members', exact: true }).click();
      expect(await accessibilityProblems(alice.page)).toEqual([]);
      await alice.page.keyboard.press('Escape');
      await alice.page.getByRole('dialog').waitFor({ state: 'detached', ...WAIT });
      await alice.page.getByRole('button', { name: 'Settings' }).click();
      expect(await accessibilityProblems(alice.page)).toEqual([]);
      await alice.page.keyboard.press('Escape');

      // A phone: the list, then the conversation alone, and back.
      const phone = await bob.context
        .browser()!
        .newContext({ viewport: PHONE, baseURL: server.url });
      const page = await phone.newPage();
      const small: Person = { name: alice.name, context: phone, page };
      watch(small);
      try {
        await page.goto('/');
        await page.getByLabel('Username').fill(alice.name);
        await page.getByLabel('Password').fill(PASSWORD);
        await page.getByRole('button', { name: 'Sign in', exact: true }).click();
        await page.getByRole('navigation', { name: 'Conversation list' }).waitFor(WAIT);
        expect(await page.getByRole('main').count()).toBe(0);
        expect(await accessibilityProblems(page)).toEqual([]);
        expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBe(
          PHONE.width,
        );
        await openConversation(small, bob.name);
        expect(await page.getByRole('navigation', { name: 'Conversation list' }).isVisible()).toBe(
          false,
        );
        await expect
          .poll(() => contents(small), poll)
          .toEqual(['typed without a mouse', 'a reply']);
        expect(await accessibilityProblems(page)).toEqual([]);
        const width = await page.evaluate<number>('document.documentElement.scrollWidth');
        expect(width).toBeLessThanOrEqual(PHONE.width);
        await page.getByRole('button', { name: 'Back to conversations' }).click();
        await page.getByRole('navigation', { name: 'Conversation list' }).waitFor(WAIT);
        // Focus returns to the conversation just left.
        await expect
          .poll(() => page.evaluate<string>('document.activeElement.textContent'), poll)
          .toContain(bob.name);
      } finally {
        await phone.close();
      }
      expect(cspErrors).toEqual([]);
    } finally {
      await alice.context.close();
      await bob.context.close();
    }
  }, 120_000);
});
