// A compact wire form for appendMessages between the main thread and the SQLite worker: flat
// arrays of strings instead of objects (structured clone of objects was ~10% of each thread's
// time in the throughput profile), and stored messages do not send their content back.
import type { AppendResult, NewEvent, NewMessage, StreamEvent } from './store.js';

const STRIDE_IN = 4;
const STRIDE_OUT = 8;
const KIND = ['unknown_receiver', 'duplicate', 'stored'] as const;

export function encodeBatch(batch: NewMessage[]): string[] {
  const out: string[] = new Array(batch.length * STRIDE_IN);
  batch.forEach((m, i) => {
    const o = i * STRIDE_IN;
    out[o] = m.senderId;
    out[o + 1] = m.receiver;
    out[o + 2] = m.content;
    out[o + 3] = m.clientId ?? '';
  });
  return out;
}

export function decodeBatch(flat: string[]): NewMessage[] {
  const batch: NewMessage[] = [];
  for (let o = 0; o < flat.length; o += STRIDE_IN) {
    const clientId = flat[o + 3] as string;
    batch.push({
      senderId: flat[o] as string,
      receiver: flat[o + 1] as string,
      content: flat[o + 2] as string,
      clientId: clientId === '' ? undefined : clientId,
    });
  }
  return batch;
}

/** Whether a batch is all direct messages by receiver: the only kind the compact form carries. */
export function isCompact(batch: Array<NewEvent | NewMessage>): batch is NewMessage[] {
  return batch.every((m) => !('kind' in m) || (m.kind === 'message' && m.receiver !== undefined));
}

/**
 * [kind, id, conversationId, sender, receiver, createdAt, recipients joined by ',', the original
 * event as JSON (duplicates only)]
 */
export function encodeResults(results: AppendResult[]): Array<string | number | null> {
  const out: Array<string | number | null> = [];
  for (const r of results) {
    if (r.kind === 'stored' && r.event.type === 'message') {
      const m = r.event;
      out.push(2, m.id, m.conversationId, m.sender, m.receiver ?? null, m.createdAt);
      out.push(r.recipients.join(','), null);
    } else if (r.kind === 'duplicate') {
      out.push(1, null, null, null, null, null, null, JSON.stringify(r.event));
    } else if (r.kind === 'unknown_receiver') {
      out.push(0, null, null, null, null, null, null, null);
    } else throw new Error(`append result ${r.kind} has no compact form`);
  }
  return out;
}

/** Rebuilds the results; stored messages take their content from the batch that was sent. */
export function decodeResults(
  flat: Array<string | number | null>,
  batch: NewMessage[],
): AppendResult[] {
  const results: AppendResult[] = [];
  for (let i = 0, o = 0; o < flat.length; i++, o += STRIDE_OUT) {
    const kind = KIND[flat[o] as 0 | 1 | 2];
    if (kind === 'unknown_receiver') results.push({ kind });
    else if (kind === 'duplicate')
      results.push({ kind, event: JSON.parse(flat[o + 7] as string) as StreamEvent });
    else {
      const receiver = flat[o + 4];
      const event = {
        type: 'message',
        id: flat[o + 1] as string,
        conversationId: flat[o + 2] as string,
        sender: flat[o + 3] as string,
        ...(receiver === null ? {} : { receiver: receiver as string }),
        content: (batch[i] as NewMessage).content,
        createdAt: flat[o + 5] as string,
      } as const;
      results.push({ kind, event, recipients: (flat[o + 6] as string).split(',') });
    }
  }
  return results;
}
