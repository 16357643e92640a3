// A Socket.IO relay: what the usual Node stack gives for the same job. The handshake carries an
// HS256 JWT (`auth.token`, verified with jose, `sub` = username); no storage. A 'message' event
// {receiver, content, clientId} is acked through the emit callback with {clientId, id,
// createdAt} and emitted as 'message' to the receiver's room, in the chat server's shapes.
// Groups are Socket.IO rooms: a 'join' event with a conversation id puts the socket in that
// room (no membership check: any client may join any room), and a 'message' event
// {conversationId, content, clientId} is acked the same way and broadcast to the room's other
// sockets (`socket.to(room)`: every member's connections but the sending one, like the chat
// server) as {type, id, conversationId, sender, content, createdAt}.
import http from 'node:http';
import { Server } from 'socket.io';
import { jwtVerify } from 'jose';

const secret = process.env.JWT_SECRET;
if (!secret || secret.length < 32) {
  console.error('socketio-relay: JWT_SECRET (32+ characters) is required');
  process.exit(2);
}
const key = new TextEncoder().encode(secret);
let nextId = 0;

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/healthz' ? 200 : 404).end();
});
const io = new Server(server, {
  transports: ['websocket'],
  serveClient: false,
  maxHttpBufferSize: 64 * 1024,
});

io.use((socket, next) => {
  const token: unknown = socket.handshake.auth.token;
  if (typeof token !== 'string') return next(new Error('unauthorized'));
  jwtVerify(token, key, { algorithms: ['HS256'] }).then(
    ({ payload }) => {
      if (typeof payload.sub !== 'string') return next(new Error('unauthorized'));
      socket.data.user = payload.sub;
      next();
    },
    () => next(new Error('unauthorized')),
  );
});

interface SendFrame {
  receiver?: unknown;
  conversationId?: unknown;
  content?: unknown;
  clientId?: unknown;
}

/** Group rooms apart from the per-user rooms (named by username). */
const groupRoom = (conversationId: unknown): string => `conversation:${String(conversationId)}`;

io.on('connection', (socket) => {
  const user = socket.data.user as string;
  void socket.join(user);
  socket.on('join', (conversationId: unknown, ack?: () => void) => {
    void socket.join(groupRoom(conversationId));
    if (typeof ack === 'function') ack();
  });
  socket.on('message', (frame: SendFrame, ack?: (reply: unknown) => void) => {
    if (typeof frame !== 'object' || frame === null) return;
    const id = String(++nextId);
    const createdAt = new Date().toISOString();
    if (typeof ack === 'function') ack({ type: 'ack', clientId: frame.clientId, id, createdAt });
    if (frame.conversationId !== undefined) {
      socket.to(groupRoom(frame.conversationId)).emit('message', {
        type: 'message',
        id,
        conversationId: frame.conversationId,
        sender: user,
        content: frame.content,
        createdAt,
      });
      return;
    }
    io.to(String(frame.receiver)).emit('message', {
      type: 'message',
      id,
      sender: user,
      receiver: frame.receiver,
      content: frame.content,
      createdAt,
    });
  });
});

server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const address = server.address();
  console.log(
    `socketio-relay listening on ${typeof address === 'object' ? address?.port : address}`,
  );
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
