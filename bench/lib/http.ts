// A small JSON HTTP client over keep-alive sockets (lighter than fetch on the generator's core).
import http from 'node:http';

export interface Reply<T> {
  status: number;
  body: T;
}

export class HttpClient {
  private readonly agent: http.Agent;
  private readonly base: URL;

  constructor(base: string, maxSockets = 16) {
    this.base = new URL(base);
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  request<T = unknown>(
    method: string,
    path: string,
    options: { body?: unknown; token?: string; timeoutMs?: number } = {},
  ): Promise<Reply<T>> {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = {};
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent: this.agent,
          host: this.base.hostname,
          port: this.base.port,
          method,
          path,
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let body: unknown = text;
            try {
              body = text ? JSON.parse(text) : undefined;
            } catch {
              /* not JSON */
            }
            resolve({ status: res.statusCode ?? 0, body: body as T });
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(options.timeoutMs ?? 30_000, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` at once; stops early at `deadline`. */
export async function pool(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
  deadline = Infinity,
): Promise<number> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < count && performance.now() < deadline) {
      const i = next++;
      await task(i);
      done += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return done;
}
