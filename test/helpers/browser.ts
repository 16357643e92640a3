// Debian's Chromium (/usr/bin/chromium) driven by playwright-core, for the browser tests: never a
// browser a test tool downloads. Without it the suites skip with a one-line notice, except under
// CI=true, where a missing browser fails the run instead of hiding a gap (.ci/run installs it).
import fs from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { onTestFailed } from 'vitest';
import { buildPart } from '../../scripts/build.js';
import { PASSWORD } from './server.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
];

/** Whether Chromium is there; a notice (or, under CI, a throw) when it is not. */
export function chromiumAvailable(): boolean {
  if (fs.existsSync(CHROMIUM)) return true;
  if (process.env.CI === 'true')
    throw new Error(
      `Chromium not found at ${CHROMIUM}; CI=true needs it (apt-get install -y chromium)`,
    );
  console.warn(
    `skipping: the browser tests need Chromium at ${CHROMIUM} (apt-get install -y chromium)`,
  );
  return false;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** The browser client's build (web/dist), rebuilt when its sources are newer. */
export async function ensureWebBuild(): Promise<void> {
  await buildPart('web', { ifStale: true, log: () => {} });
}

export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 800 };

/** A person at a browser window: their own context (storage, cookies), one page. */
export interface Person {
  name: string;
  context: BrowserContext;
  page: Page;
}

export async function openAs(
  browser: Browser,
  url: string,
  name: string,
  viewport = DESKTOP,
): Promise<Person> {
  const context = await browser.newContext({ viewport, baseURL: url });
  const page = await context.newPage();
  trace(name, page);
  await page.goto('/');
  return { name, context, page };
}

/**
 * Keeps the page's last few hundred socket frames, HTTP responses and errors, and prints them
 * if the running test fails: a timeout in a loaded CI run then says what the page last saw.
 * Paths only, never query strings (a socket ticket travels in one) or bodies.
 */
function trace(name: string, page: Page): void {
  const lines: string[] = [];
  const start = Date.now();
  const note = (line: string) => {
    lines.push(`${String(Date.now() - start).padStart(6)} ms ${line}`);
    if (lines.length > 400) lines.shift();
  };
  const frame = (payload: string | Buffer) => String(payload).slice(0, 200);
  page.on('websocket', (ws) => {
    note(`socket opened ${new URL(ws.url()).pathname}`);
    ws.on('framesent', (f) => note(`> ${frame(f.payload)}`));
    ws.on('framereceived', (f) => note(`< ${frame(f.payload)}`));
    ws.on('close', () => note('socket closed'));
  });
  page.on('response', (r) =>
    note(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`),
  );
  page.on('pageerror', (e) => note(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') note(`console.${m.type()}: ${m.text()}`);
  });
  onTestFailed(() => {
    console.log(`--- ${name}'s page, its last ${lines.length} events ---\n${lines.join('\n')}`);
  });
}

export async function signUp(person: Person): Promise<void> {
  const { page } = person;
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByLabel('Username').fill(person.name);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

export async function signIn(person: Person): Promise<void> {
  const { page } = person;
  await page.getByLabel('Username').fill(person.name);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** Finds a user and opens (or starts) the direct conversation with them. */
export async function openDirect(person: Person, username: string): Promise<void> {
  const { page } = person;
  await page.getByLabel('Find people').fill(username);
  await page.getByRole('button', { name: `Message ${username}` }).click();
  await page.getByRole('heading', { name: username, level: 2 }).waitFor();
}

/** Opens a conversation of the list by its title. */
export async function openConversation(person: Person, title: string): Promise<void> {
  await person.page
    .getByRole('navigation', { name: 'Conversation list' })
    .getByRole('button', { name: new RegExp(`^${title}`) })
    .click();
  await person.page.getByRole('heading', { name: title, level: 2 }).waitFor();
}

/** Types a message and presses Enter. */
export async function write(person: Person, text: string): Promise<void> {
  const box = person.page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
}

/** The texts of the open conversation's messages, in order. */
export function contents(person: Person): Promise<string[]> {
  return person.page.locator('.message-list .message .content').allTextContents();
}

/** A message of the open conversation by its text. */
export function message(person: Person, text: string) {
  return person.page.locator('.message-list .message', {
    has: person.page.locator('.content', { hasText: text }),
  });
}
