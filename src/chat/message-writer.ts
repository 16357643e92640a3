// Group commit: messages that arrive while a transaction is being written wait and are written
// together in the next one, so one fsync covers many messages. Results come back in the order
// the messages were appended, which keeps every connection's acks in the order it sent.
import type { AppendResult, NewEvent, NewMessage, Store } from '../storage/store.js';

interface Pending {
  input: NewEvent | NewMessage;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

export interface MessageWriterOptions {
  /** Most messages in one transaction. */
  maxBatch?: number;
  /** Called after each commit, for metrics. */
  onCommit?: (size: number, seconds: number) => void;
}

export class MessageWriter {
  private queue: Pending[] = [];
  private writing: Promise<void> | undefined;
  private readonly maxBatch: number;

  constructor(
    private readonly store: Store,
    private readonly options: MessageWriterOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 1000;
  }

  /** Resolves once the message is durably stored (or found to be a duplicate, or refused). */
  append(input: NewEvent | NewMessage): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      // setImmediate: every frame read in this turn of the event loop joins the same batch.
      this.writing ??= new Promise<void>((done) => setImmediate(done)).then(() =>
        this.drainQueue(),
      );
    });
  }

  /** Resolves when every message appended so far has been written. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drainQueue(): Promise<void> {
    while (this.queue.length > 0) {
      const batch =
        this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
      this.queue = this.queue.length <= this.maxBatch ? [] : this.queue.slice(this.maxBatch);
      const started = performance.now();
      try {
        const results = await this.store.appendMessages(batch.map((p) => p.input));
        this.options.onCommit?.(batch.length, (performance.now() - started) / 1000);
        batch.forEach((p, i) => p.resolve(results[i] as AppendResult));
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.writing = undefined;
  }
}
