/** Polling for a condition in tests. */

/**
 * Calls `f` every 20 ms until it returns a truthy value, and returns that.
 * @throws Error `timed out waiting for {what}` after `timeoutMs` (default 10 000 ms).
 */
export async function until<T>(what: string, f: () => Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
