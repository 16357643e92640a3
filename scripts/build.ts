// Builds what `npm start` runs, saying what it does: the server (tsc, into dist/) and the browser
// client (Vite, into web/dist/). `npm install` builds both (the `prepare` script), so the first
// `npm start` only checks: with --if-stale a part is rebuilt only when a source file is newer
// than its last build.
//
//   tsx scripts/build.ts [--if-stale] [server] [web]      (both when neither is named)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const at = (...p: string[]) => path.join(ROOT, ...p);

interface Part {
  name: 'server' | 'web';
  what: string;
  /** Files and directories whose contents the build reads. */
  inputs: string[];
  /** Written after a successful build; its time is the build's. */
  stamp: string;
  run(): Promise<void>;
}

export const WEB_DIST = at('web', 'dist');

const parts: Record<Part['name'], Part> = {
  server: {
    name: 'server',
    what: 'Compiling the server (tsc into dist/; up to a minute on a slow machine)',
    inputs: [at('src'), at('tsconfig.json'), at('tsconfig.build.json')],
    stamp: at('dist', '.build-stamp'),
    async run() {
      await exec(process.execPath, [
        at('node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        at('tsconfig.build.json'),
      ]);
      fs.copyFileSync(
        at('src', 'auth', 'common-passwords.txt'),
        at('dist', 'src', 'auth', 'common-passwords.txt'),
      );
    },
  },
  web: {
    name: 'web',
    what: 'Building the browser client (Vite into web/dist/)',
    inputs: [at('web'), at('client', 'src'), at('package-lock.json')],
    stamp: at('web', 'dist', '.build-stamp'),
    async run() {
      const { build } = await import('vite');
      await build({ configFile: at('web', 'vite.config.ts'), logLevel: 'warn' });
    },
  },
};

/** The newest modification time under `p` (build outputs and dependencies left out). */
function newest(p: string): number {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  let time = stat.mtimeMs;
  for (const entry of fs.readdirSync(p)) {
    if (entry === 'node_modules' || entry === 'dist') continue;
    time = Math.max(time, newest(path.join(p, entry)));
  }
  return time;
}

function isStale(part: Part): boolean {
  let built: number;
  try {
    built = fs.statSync(part.stamp).mtimeMs;
  } catch {
    return true;
  }
  return part.inputs.some((input) => newest(input) > built);
}

function exec(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(new Error(`${path.basename(args[0] ?? command)} failed (${signal ?? code})`)),
    );
  });
}

/** Builds a part (when stale, with `ifStale`); `log` receives what it is doing. */
export async function buildPart(
  name: Part['name'],
  options: { ifStale?: boolean; log?: (line: string) => void } = {},
): Promise<void> {
  const part = parts[name];
  const log = options.log ?? ((line: string) => console.log(line));
  if (options.ifStale && !isStale(part)) return;
  log(`${part.what}…`);
  const started = Date.now();
  await part.run();
  fs.mkdirSync(path.dirname(part.stamp), { recursive: true });
  fs.writeFileSync(part.stamp, `${new Date().toISOString()}\n`);
  log(`${part.name}: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function main(argv: string[]): Promise<void> {
  const ifStale = argv.includes('--if-stale');
  const named = argv.filter((a): a is Part['name'] => a === 'server' || a === 'web');
  const unknown = argv.filter((a) => a !== '--if-stale' && a !== 'server' && a !== 'web');
  if (unknown.length > 0) {
    console.error(
      `build: unknown argument ${unknown.join(' ')}; usage: build.ts [--if-stale] [server] [web]`,
    );
    process.exit(2);
  }
  for (const name of named.length > 0 ? named : (['server', 'web'] as const))
    await buildPart(name, { ifStale });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
