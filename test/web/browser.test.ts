// The browser client end to end, in Debian's Chromium: people sign up in separate browser
// contexts (separate storage, like separate browsers) and chat through a real server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startServer, uniqueName, type TestServer } from '../helpers/server.js';
import {
  chromiumAvailable,
  contents,
  ensureWebBuild,
  launchChromium,
  message,
  openAs,
  openConversation,
  openDirect,
  signUp,
  write,
  type Person,
} from '../helpers/browser.js';

const available = chromiumAvailable();
const WAIT = { timeout: 15_000 };
const poll = { timeout: 15_000, interval: 100 };

describe.skipIf(!available)('the browser client in Chromium', () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    await ensureWebBuild();
    server = await startServer();
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
      await message(alice, 'hello bob')
        .and(alice.page.locator('[data-status="sent"], [data-status="delivered"]'))
        .waitFor(WAIT);

      // Bob's list shows the new conversation with one unread message, live.
      const item = bob.page.getByRole('button', { name: new RegExp(`^${alice.name}`) });
      await item.waitFor(WAIT);
      await bob.page.getByLabel('1 unread').waitFor(WAIT);
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
});
