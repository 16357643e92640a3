// Takes the README's screenshots of the browser client (docs/screenshots/), at a desktop and a
// phone width, in Debian's Chromium: a throw-away server, three users and a few messages.
//
//   npm run screenshots
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import {
  DESKTOP,
  ensureWebBuild,
  launchChromium,
  PHONE,
  signIn,
  type Person,
} from '../test/helpers/browser.js';
import { account, connect, request, startServer } from '../test/helpers/server.js';

const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'screenshots');

async function main(): Promise<void> {
  await ensureWebBuild();
  const server = await startServer();
  const browser = await launchChromium();
  try {
    const alice = await account(server, 'alice');
    const bob = await account(server, 'bob');
    const carol = await account(server, 'carol');
    const group = await request(server, 'POST', '/conversations', {
      token: alice.token,
      body: { title: 'Weekend trip', members: ['bob', 'carol'] },
    });
    const ws = {
      alice: await connect(server, { token: alice.token }),
      bob: await connect(server, { token: bob.token }),
      carol: await connect(server, { token: carol.token }),
    };
    let n = 0;
    const say = async (who: keyof typeof ws, frame: Record<string, unknown>) => {
      const clientId = `s-${++n}`;
      ws[who].send({ ...frame, clientId });
      return (await ws[who].next((f) => f.type === 'ack' && f.clientId === clientId)).id as string;
    };
    await say('carol', { conversationId: group.body.id, content: 'Train or car on Saturday?' });
    await say('bob', { conversationId: group.body.id, content: 'Train, I can book it tonight' });
    await say('alice', { receiver: 'bob', content: 'Hi Bob! Are you around later?' });
    await say('bob', { receiver: 'alice', content: 'Yes, after six. What is up?' });
    const asked = await say('alice', {
      receiver: 'bob',
      content: 'Want to look at the slides for Monday together?',
    });
    ws.bob.send({ type: 'read', with: 'alice', upTo: asked });
    await say('carol', { receiver: 'alice', content: 'Lunch tomorrow?' });
    await new Promise((r) => setTimeout(r, 700)); // receipts are gathered for 500 ms
    ws.alice.close();

    fs.mkdirSync(OUT, { recursive: true });
    for (const [name, viewport] of [
      ['desktop', DESKTOP],
      ['phone', PHONE],
    ] as const) {
      const context = await browser.newContext({
        viewport,
        baseURL: server.url,
        deviceScaleFactor: name === 'phone' ? 2 : 1,
      });
      const page = await context.newPage();
      const me: Person = { name: 'alice', context, page };
      await page.goto('/');
      await shoot(page, `${name}-sign-in`);
      await signIn(me);
      await page.getByText('Lunch tomorrow?').waitFor();
      if (name === 'phone') await shoot(page, 'phone-conversations');
      await page
        .getByRole('navigation', { name: 'Conversation list' })
        .getByRole('button', { name: /^bob/ })
        .click();
      await page.locator('.message[data-status="read"]').last().waitFor();
      ws.bob.send({ type: 'typing', with: 'alice' });
      await page.getByText('bob is typing…').waitFor();
      await page.getByLabel('Message', { exact: true }).fill('Great, see you at six');
      await shoot(page, `${name}-conversation`);
      if (name === 'desktop') {
        await page
          .getByRole('navigation', { name: 'Conversation list' })
          .getByRole('button', { name: /^Weekend trip/ })
          .click();
        await page.getByRole('button', { name: 'Members', exact: true }).click();
        await shoot(page, 'desktop-group-members');
        await page.keyboard.press('Escape');
        await context.setOffline(true);
        await page.getByText('You are offline.').waitFor();
        await page.getByLabel('Message', { exact: true }).fill('Sent when back online');
        await page.getByLabel('Message', { exact: true }).press('Enter');
        await shoot(page, 'desktop-offline');
      }
      await context.close();
    }
    ws.bob.close();
    ws.carol.close();
  } finally {
    await browser.close();
    await server.close();
  }
}

async function shoot(page: Page, name: string): Promise<void> {
  await page.waitForTimeout(150); // let the last render settle
  const file = path.join(OUT, `${name}.png`);
  await page.screenshot({ path: file });
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
