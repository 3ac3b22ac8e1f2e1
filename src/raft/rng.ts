/** A small deterministic PRNG (xorshift32 over a scrambled seed). Returns floats in [0, 1). */
export function makeRng(seed: number): () => number {
  // Scramble the seed so that nearby seeds give unrelated streams; never let the state be zero.
  let x = Math.imul((seed | 0) ^ 0x5bd1e995, 0x27d4eb2d) ^ 0x9e3779b9;
  if (x === 0) x = 0x6b43a9b5;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  for (let i = 0; i < 8; i++) next();
  return next;
}

/** An integer in [lo, hi). */
export function randInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo));
}
