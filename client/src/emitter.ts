// A small typed event emitter: on() returns a function that removes the listener.

export type Listener<T> = (value: T) => void;

export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Calls `listener` for each event `name` until the returned function is called. */
  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => this.off(name, listener);
  }

  /** Like `on`, for the next event only. */
  once<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(name, (value) => {
      off();
      listener(value);
    });
    return off;
  }

  off<K extends keyof Events>(name: K, listener: Listener<Events[K]>): void {
    this.listeners.get(name)?.delete(listener as Listener<never>);
  }

  /**
   * Calls every listener of `name` in the order they were added. A listener that throws does not
   * stop the others or the library: the error is reported to `onListenerError`.
   */
  protected emit<K extends keyof Events>(name: K, value: Events[K]): void {
    for (const listener of [...(this.listeners.get(name) ?? [])]) {
      try {
        (listener as Listener<Events[K]>)(value);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }

  /** Where a listener's exception goes; by default it is rethrown outside the library's stack. */
  protected onListenerError(error: unknown): void {
    setTimeout(() => {
      throw error;
    }, 0);
  }
}
