/**
 * The fuzzer's seeded generator: sfc32 (small, fast, passes PractRand for our purposes) seeded through a
 * 32-bit mix of the run seed, the stream name and the case index. Every case draws from its own generator,
 * so case `i` of a stream is the same bytes whatever ran before it, and one case can be replayed alone.
 */

/** 32-bit string hash (FNV-1a), for stream names. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A finaliser in the style of murmur3's fmix32: spreads every input bit over the output. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = '', index = 0) {
    const s = mix32(seed >>> 0);
    const t = mix32(hash32(stream) ^ 0x9e3779b9);
    const u = mix32((index >>> 0) + 0x7f4a7c15);
    this.a = s ^ t;
    this.b = mix32(s + u);
    this.c = mix32(t ^ u ^ 0xdeadbeef);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** The next 32 random bits, as an unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** An integer in [lo, hi] biased towards small values (log-uniform), for lengths and depths. */
  size(lo: number, hi: number): number {
    const l = Math.log(lo + 1);
    const h = Math.log(hi + 1);
    return Math.min(hi, Math.max(lo, Math.floor(Math.exp(l + this.next() * (h - l))) - 1));
  }

  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from an empty list');
    return xs[Math.floor(this.next() * xs.length)] as T;
  }

  /** One of the values, with probability proportional to its weight. */
  weighted<T>(xs: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of xs) total += w;
    let r = this.next() * total;
    for (const [w, v] of xs) {
      r -= w;
      if (r < 0) return v;
    }
    return (xs[xs.length - 1] as readonly [number, T])[1];
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.u32();
      for (let j = 0; j < 4 && i + j < n; j++) b[i + j] = (v >>> (8 * j)) & 0xff;
    }
    return b;
  }

  /** A new generator derived from this one (for a sub-part whose draws must not shift the rest). */
  fork(tag: string): Rng {
    return new Rng(this.u32(), tag, this.u32());
  }
}

/** A fresh 31-bit seed (for runs that were not given one). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 0x7fffffff);
}
