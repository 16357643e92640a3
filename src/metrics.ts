// Prometheus metrics, in a registry of the app's own (no global state shared between apps).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpDuration: new Histogram({
      name: 'chat_http_request_duration_seconds',
      help: 'HTTP request duration by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    wsConnections: new Gauge({
      name: 'chat_websocket_connections',
      help: 'Open WebSocket connections on this node',
      registers: [registry],
    }),
    messagesStored: new Counter({
      name: 'chat_messages_stored_total',
      help: 'Messages durably stored',
      registers: [registry],
    }),
    commitBatch: new Histogram({
      name: 'chat_commit_batch_size',
      help: 'Messages per group-commit transaction',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers: [registry],
    }),
    commitSeconds: new Histogram({
      name: 'chat_commit_duration_seconds',
      help: 'Duration of one group-commit transaction, fsync included',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      registers: [registry],
    }),
    deliveryLag: new Histogram({
      name: 'chat_delivery_lag_seconds',
      help: 'From the commit of a message to its frame written to the connections of a receiving user on this node',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    messages: new Counter({
      name: 'chat_messages_total',
      help: 'Message, edit and delete frames by outcome (stored, duplicate, refused, failed) and refusal code',
      labelNames: ['outcome', 'code'],
      registers: [registry],
    }),
    dedupHits: new Counter({
      name: 'chat_dedup_hits_total',
      help: 'Sends recognised as a retry of a stored clientId (acked again, not stored)',
      registers: [registry],
    }),
    errorFrames: new Counter({
      name: 'chat_websocket_error_frames_total',
      help: 'WebSocket error frames sent, by code',
      labelNames: ['code'],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'chat_rate_limited_total',
      help: 'Requests, handshakes and frames refused by a rate limit, by limit',
      labelNames: ['limit'],
      registers: [registry],
    }),
    syncRequests: new Counter({
      name: 'chat_sync_requests_total',
      help: 'Sync requests (GET /sync pages, WebSocket replays), by transport',
      labelNames: ['via'],
      registers: [registry],
    }),
    syncEvents: new Counter({
      name: 'chat_sync_events_replayed_total',
      help: 'Stream events sent by sync (GET /sync pages and WebSocket replays), by transport',
      labelNames: ['via'],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
