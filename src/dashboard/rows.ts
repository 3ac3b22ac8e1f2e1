/** The key browser's listings for modes whose stores are plain maps: sorted keys under a prefix, at most `limit`. */
import type { KeyRow } from './server.js';

export function rowsOf<R>(
  entries: Iterable<[string, R]>,
  prefix: string,
  limit: number,
  row: (key: string, r: R) => KeyRow | undefined,
): KeyRow[] {
  const keys: [string, R][] = [];
  for (const [k, r] of entries) if (k.startsWith(prefix)) keys.push([k, r]);
  keys.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const out: KeyRow[] = [];
  for (const [k, r] of keys) {
    const x = row(k, r);
    if (x !== undefined) out.push(x);
    if (out.length >= limit) break;
  }
  return out;
}
