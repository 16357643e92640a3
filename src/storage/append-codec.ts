// A compact wire form for appendMessages between the main thread and the SQLite worker: flat
// arrays of strings instead of objects (structured clone of objects was ~10% of each thread's
// time in the throughput profile), and stored messages do not send their content back.
import type { AppendResult, NewMessage } from './store.js';

const STRIDE_IN = 4;
const STRIDE_OUT = 7;
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

/** [kind, id, sender, receiver, content (duplicates only), createdAt, recipients joined by ','] */
export function encodeResults(results: AppendResult[]): Array<string | number | null> {
  const out: Array<string | number | null> = [];
  for (const r of results) {
    if (r.kind === 'unknown_receiver') out.push(0, null, null, null, null, null, null);
    else if (r.kind === 'duplicate') {
      const m = r.message;
      out.push(1, m.id, m.sender, m.receiver, m.content, m.createdAt, null);
    } else {
      const m = r.message;
      out.push(2, m.id, m.sender, m.receiver, null, m.createdAt, r.recipients.join(','));
    }
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
    if (kind === 'unknown_receiver') {
      results.push({ kind });
      continue;
    }
    const message = {
      id: flat[o + 1] as string,
      sender: flat[o + 2] as string,
      receiver: flat[o + 3] as string,
      content: kind === 'stored' ? (batch[i] as NewMessage).content : (flat[o + 4] as string),
      createdAt: flat[o + 5] as string,
    };
    results.push(
      kind === 'stored'
        ? { kind, message, recipients: (flat[o + 6] as string).split(',') }
        : { kind, message },
    );
  }
  return results;
}
