// A bare `ws` relay: the floor the chat server is measured against. No authentication, storage
// or validation: `?user=NAME` names a connection; a frame {receiver, content, clientId} is acked
// at once and forwarded to the receiver's sockets, in the chat server's frame shapes.
import http from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

const byUser = new Map<string, Set<WebSocket>>();
let nextId = 0;

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/healthz' ? 200 : 404).end();
});
const wss = new WebSocketServer({
  server,
  path: '/websocket',
  clientTracking: false,
  maxPayload: 64 * 1024,
});

wss.on('connection', (ws, req) => {
  const user = new URL(req.url ?? '/', 'http://relay').searchParams.get('user') ?? 'anonymous';
  let sockets = byUser.get(user);
  if (!sockets) byUser.set(user, (sockets = new Set()));
  sockets.add(ws);

  ws.on('message', (data) => {
    let frame: { receiver?: unknown; content?: unknown; clientId?: unknown };
    try {
      frame = JSON.parse(data.toString()) as typeof frame;
    } catch {
      return;
    }
    const id = String(++nextId);
    const createdAt = new Date().toISOString();
    ws.send(JSON.stringify({ type: 'ack', clientId: frame.clientId, id, createdAt }));
    const targets = byUser.get(String(frame.receiver));
    if (!targets) return;
    const out = JSON.stringify({
      type: 'message',
      id,
      sender: user,
      receiver: frame.receiver,
      content: frame.content,
      createdAt,
    });
    for (const target of targets) target.send(out);
  });
  ws.on('error', () => ws.terminate());
  ws.on('close', () => {
    sockets.delete(ws);
    if (sockets.size === 0) byUser.delete(user);
  });
});

server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const address = server.address();
  console.log(`ws-relay listening on ${typeof address === 'object' ? address?.port : address}`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
