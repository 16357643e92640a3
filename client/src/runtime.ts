// What the runtime provides, read without relying on DOM or Node type declarations, so that the
// library compiles against either and uses whatever is there.

/** A global of the runtime (window, self or Node's global), if it has one by that name. */
export function runtimeGlobal<T>(name: string): T | undefined {
  return (globalThis as unknown as Record<string, unknown>)[name] as T | undefined;
}
