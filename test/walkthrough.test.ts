// The README's walk-through, run as a reader would paste it into a fresh server: the shell blocks
// of "HTTP API" and "WebSocket" in bash (curl and jq), the wscat transcripts over a WebSocket.
// Every output the README shows must be what is printed, with times, tokens and tickets masked
// and `…` standing for anything.
//
// How the README is read: in a shell block, a command is a line not starting with `#` (with its
// `\` continuations); the `# ` lines right under it, with no blank line between, are its output.
// In a transcript, `> ` lines are sent in order and each `< ` line is the next frame received.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, startServer, type Client, type TestServer } from './helpers/server.js';

const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8');

interface Step {
  command: string;
  /** The documented output, or undefined when the README shows none. */
  output: string | undefined;
  line: number;
}

interface Block {
  lang: string;
  body: string[];
  /** README line of the block's first line. */
  line: number;
}

/** The fenced blocks of a section (from its `## ` heading to the next), with their language. */
function blocks(section: string): Block[] {
  const lines = readme.split('\n');
  const start = lines.findIndex((l) => l === `## ${section}`);
  if (start < 0) throw new Error(`README has no section ${section}`);
  const found: Block[] = [];
  for (let i = start + 1; i < lines.length && !lines[i]!.startsWith('## '); i++) {
    const open = /^```(\w*)$/.exec(lines[i]!);
    if (!open) continue;
    const body: string[] = [];
    const line = i + 2;
    for (i += 1; lines[i] !== '```'; i++) body.push(lines[i]!);
    found.push({ lang: open[1]!, body, line });
  }
  return found;
}

/** A shell block as commands, each with the output documented under it. */
function steps(block: Block): Step[] {
  const result: Step[] = [];
  const { body } = block;
  for (let i = 0; i < body.length; i++) {
    const text = body[i]!;
    if (text.trim() === '' || text.startsWith('#')) continue;
    const line = block.line + i;
    const command = [text];
    while (command.at(-1)!.endsWith('\\') && i + 1 < body.length) command.push(body[++i]!);
    const output: string[] = [];
    while (i + 1 < body.length && body[i + 1]!.startsWith('#')) output.push(body[++i]!);
    result.push({
      command: command.join('\n'),
      output: output.length ? output.map((l) => l.replace(/^# ?/, '')).join('\n') : undefined,
      line,
    });
  }
  return result;
}

/** What may differ between runs, masked. */
function mask(text: string): string {
  return text
    .replace(/eyJ[\w-]*…/g, '<jwt>')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>')
    .replace(/eyJ[\w-]*\.[\w-]*\.[\w-]*/g, '<jwt>')
    .replace(/"[\w-]{20,}"/g, '"<token>"')
    .replace(/curl\/[\d.]+/g, 'curl/<v>');
}

/** Lines trimmed and joined: a JSON document wrapped over comment lines reads as one line. */
const flat = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .join('');

/**
 * Whether `actual` is what the README shows, `…` matching anything; without `spaces`, white space
 * is left out on both sides (for what Node's console.log wraps as it likes).
 */
function shows(documented: string, actual: string, options = { spaces: true }): boolean {
  const strip = (t: string) => (options.spaces ? flat(mask(t)) : mask(t).replace(/\s+/g, ''));
  const pattern = strip(documented)
    .split('…')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[\\s\\S]*?');
  return new RegExp(`^${pattern}$`).test(strip(actual));
}

/** One bash process: variables set by a command stay for the next, as in a terminal. */
class Shell {
  private readonly bash: ChildProcessWithoutNullStreams;
  private buffer = '';
  private waiting: ((output: string) => void) | undefined;

  constructor() {
    this.bash = spawn('bash', ['--noprofile', '--norc'], { stdio: 'pipe' });
    this.bash.stdout.setEncoding('utf8');
    this.bash.stdout.on('data', (chunk: string) => {
      this.buffer += chunk;
      const end = this.buffer.indexOf(Shell.END);
      if (end >= 0 && this.waiting) {
        const output = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + Shell.END.length);
        const resolve = this.waiting;
        this.waiting = undefined;
        resolve(output.replace(/\n$/, ''));
      }
    });
  }

  static readonly END = '\n@@end@@\n';

  /** Runs a command; resolves with what it printed on stdout. */
  run(command: string): Promise<string> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.bash.stdin.write(`${command}\nprintf '\\n@@end@@\\n'\n`);
    });
  }

  close(): void {
    this.bash.stdin.end();
  }
}

const tools = ['bash', 'curl', 'jq'].every((tool) =>
  process.env.PATH?.split(':').some((dir) => fs.existsSync(`${dir}/${tool}`)),
);
if (!tools) console.warn("skipping: the README's walk-through needs bash, curl and jq");

const BASE = 'http://localhost:3000';

describe.skipIf(!tools)("the README's walk-through, pasted in order into a fresh server", () => {
  let server: TestServer;
  let shell: Shell;
  const sockets: Client[] = [];

  beforeAll(async () => {
    server = await startServer({ NODE_ENV: 'development' });
    shell = new Shell();
  });
  afterAll(async () => {
    for (const s of sockets) s.close();
    shell?.close();
    await server?.close();
  });

  it('prints what the README shows', async () => {
    const sections = [...blocks('HTTP API'), ...blocks('WebSocket')];
    const wrong: string[] = [];
    let checked = 0;
    let last = '';
    let alice: Client | undefined;
    let bob: Client | undefined;
    let script: Block | undefined;
    for (const block of sections) {
      if (block.lang === 'sh') {
        for (const step of steps(block)) {
          last = step.command;
          // Interactive (wscat: the transcripts below) or a browser: not run here.
          if (/^(npx wscat|open) /.test(step.command)) continue;
          const actual = await shell.run(step.command.replaceAll(BASE, server.url));
          if (step.output === undefined) continue;
          checked += 1;
          if (!shows(step.output, actual))
            wrong.push(
              `README.md:${step.line}: ${step.command.split('\n')[0]}\n  shows:  ${flat(step.output)}\n  prints: ${flat(actual)}`,
            );
        }
      } else if (block.lang === '' && block.body.some((l) => l.startsWith('> '))) {
        // A wscat transcript, as alice; bob is connected in his own terminal.
        if (!alice || !bob) {
          const token = await shell.run('printf %s "$TOKEN"');
          const bobToken = await shell.run('printf %s "$BOB_TOKEN"');
          bob = await connect(server, { token: bobToken });
          alice = await connect(server, { token });
          sockets.push(alice, bob);
        }
        checked += await play(block, alice, bob, wrong);
      } else if (block.lang === 'js') {
        script = block;
      } else if (block.lang === '' && script) {
        // What the Node.js example prints, run as bob.
        const printed = await runScript(script, server, await shell.run('printf %s "$BOB_TOKEN"'));
        script = undefined;
        checked += 1;
        if (!shows(block.body.join('\n'), printed, { spaces: false }))
          wrong.push(`README.md:${block.line}: the ws example prints\n${printed}`);
      } else if (block.lang === '' && block.body.every((l) => l.startsWith('< '))) {
        // What bob's connection received.
        for (const [i, expected] of block.body.entries()) {
          const frame = await bob!.next();
          checked += 1;
          if (!shows(expected.slice(2), JSON.stringify(frame)))
            wrong.push(
              `README.md:${block.line + i}: bob receives ${expected}\n  got: ${JSON.stringify(frame)}`,
            );
        }
      }
    }
    expect(wrong.join('\n')).toBe('');
    expect(checked).toBeGreaterThan(25);
    expect(last).toMatch(/^open http:\/\/localhost:3000\/(\s|$)/);
  }, 60_000);
});

/** Sends each `>` frame as alice; each `<` line must be the next frame she receives. */
async function play(block: Block, alice: Client, bob: Client, wrong: string[]): Promise<number> {
  let checked = 0;
  for (const [i, text] of block.body.entries()) {
    if (text.startsWith('> ')) {
      alice.send(text.slice(2));
      continue;
    }
    if (!text.startsWith('< ')) continue;
    const expected = text.slice(2);
    const receipt = expected.includes('"type":"receipt"');
    if (receipt && expected.includes('"kind":"read"')) {
      // Bob's part, as the README tells it: he marks the group read.
      const read = /`(\{"type":"read"[^`]*\})`/.exec(readme)?.[1];
      if (!read) throw new Error('the README names no read frame for bob');
      bob.send(read);
    }
    const frame = receipt
      ? await alice.nextSignal((f) => f.type === 'receipt')
      : await alice.next();
    checked += 1;
    if (!shows(expected, JSON.stringify(frame)))
      wrong.push(`README.md:${block.line + i}: ${expected}\n  got: ${JSON.stringify(frame)}`);
  }
  return checked;
}

/** Runs the README's Node.js example (with this repository's `ws`) until its ack, or 10 s. */
async function runScript(block: Block, server: TestServer, token: string): Promise<string> {
  const ws = pathToFileURL(path.resolve('node_modules/ws/wrapper.mjs')).href;
  const code = block.body
    .join('\n')
    .replace("from 'ws'", `from '${ws}'`)
    .replace('ws://localhost:3000', server.wsUrl.replace(/\/websocket$/, ''));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-readme-'));
  const file = path.join(dir, 'bob.mjs');
  fs.writeFileSync(file, code);
  const child = spawn(process.execPath, [file], { env: { ...process.env, TOKEN: token } });
  let out = '';
  child.stdout.setEncoding('utf8');
  try {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 10_000);
      child.stdout.on('data', (chunk: string) => {
        out += chunk;
        if (/type: 'ack'[^}]*\}/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } finally {
    child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return out.trim();
}
