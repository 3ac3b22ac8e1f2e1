/**
 * A sorted set of strings (UTF-16 code unit order) as a list of sorted chunks: insert and delete cost a
 * binary search plus a splice within one chunk of at most 2 × CHUNK keys, so 100k keys stay cheap, and a
 * range scan walks chunks in order.
 */
const CHUNK = 512;

function lowerBound(arr: readonly string[], s: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((arr[mid] as string) < s) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class SortedKeys {
  private chunks: string[][] = [];
  private count = 0;

  /** Builds from keys already sorted and distinct. */
  static fromSorted(keys: readonly string[]): SortedKeys {
    const s = new SortedKeys();
    for (let i = 0; i < keys.length; i += CHUNK) s.chunks.push(keys.slice(i, i + CHUNK));
    s.count = keys.length;
    return s;
  }

  get size(): number {
    return this.count;
  }

  /** Index of the first chunk whose last key is >= `s` (chunks.length if none). */
  private chunkFor(s: string): number {
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.chunks[mid] as string[];
      if ((c[c.length - 1] as string) < s) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Adds `key` (which must not be present). */
  insert(key: string): void {
    this.count++;
    if (this.chunks.length === 0) {
      this.chunks.push([key]);
      return;
    }
    let ci = this.chunkFor(key);
    if (ci === this.chunks.length) ci--;
    const c = this.chunks[ci] as string[];
    c.splice(lowerBound(c, key), 0, key);
    if (c.length > 2 * CHUNK) this.chunks.splice(ci + 1, 0, c.splice(CHUNK));
  }

  /** Removes `key` if present. */
  delete(key: string): void {
    const ci = this.chunkFor(key);
    const c = this.chunks[ci];
    if (c === undefined) return;
    const i = lowerBound(c, key);
    if (c[i] !== key) return;
    c.splice(i, 1);
    this.count--;
    if (c.length === 0) this.chunks.splice(ci, 1);
  }

  /** Keys >= `from`, in order. */
  *from(start: string): Generator<string> {
    let ci = this.chunkFor(start);
    if (ci >= this.chunks.length) return;
    let i = lowerBound(this.chunks[ci] as string[], start);
    for (; ci < this.chunks.length; ci++, i = 0) {
      const c = this.chunks[ci] as string[];
      for (; i < c.length; i++) yield c[i] as string;
    }
  }

  /** All keys in order. */
  *[Symbol.iterator](): Generator<string> {
    for (const c of this.chunks) yield* c;
  }
}
