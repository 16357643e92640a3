// Where the idempotency window ends, found without a scan: message ids grow with commit time, so
// the newest message older than the window is found by bisecting ids with primary-key seeks
// (O(log n) whatever the table's size), and keys are then released in bounded chunks.

/** A message as the bisection sees it: its id and ISO creation time. */
export interface Stamp {
  id: number;
  createdAt: string;
}

/**
 * The greatest id in (lo, hi] whose message was created before `cutoff`, or undefined when the
 * first message after `lo` is not. `firstAtOrAfter(id)` returns the first message with an id of
 * at least `id`. Creation times follow ids closely (a clock step back can bend that a little; the
 * release re-checks each row's time, so a bent bisection releases late, never early).
 */
export async function lastIdBefore(
  lo: number,
  hi: number,
  cutoff: string,
  firstAtOrAfter: (id: number) => Promise<Stamp | undefined>,
): Promise<number | undefined> {
  if (hi <= lo) return undefined;
  const first = await firstAtOrAfter(lo + 1);
  if (!first || first.id > hi || first.createdAt >= cutoff) return undefined;
  let ok = first.id; // known older than the cutoff
  let bad = hi + 1; // known not (or past the end)
  while (bad - ok > 1) {
    const mid = Math.floor((ok + bad) / 2);
    const m = await firstAtOrAfter(mid);
    if (!m || m.id >= bad || m.createdAt >= cutoff) bad = mid;
    else ok = m.id;
  }
  return ok;
}

/** Id ranges of at most `size` covering (lo, hi], in order. */
export function* chunks(lo: number, hi: number, size: number): Generator<[number, number]> {
  for (let from = lo; from < hi; from += size) yield [from, Math.min(from + size, hi)];
}

/** Ids per release statement: one statement stays short, whatever expired since the last run. */
export const RELEASE_CHUNK = 5000;
