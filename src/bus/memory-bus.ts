// The in-process Bus: handlers run synchronously, in publish order, inside `publish`.
import type { Bus, BusEvent, BusHandler } from './bus.js';

export class MemoryBus implements Bus {
  readonly description = 'memory';
  private readonly handlers = new Set<BusHandler>();

  async publish(event: BusEvent): Promise<void> {
    this.publishSync(event);
  }

  /** Same as `publish`, without a promise, for hot paths in the same process. */
  publishSync(event: BusEvent): void {
    for (const handler of this.handlers) handler(event);
  }

  subscribe(handler: BusHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
