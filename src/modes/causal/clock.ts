/**
 * Vector clocks keyed by replica address ("IP:PORT").
 *
 * A clock has one entry per replica that has ever originated a write the holder depends on, so its size is
 * bounded by the number of replica addresses in the view — never by the number of writes. Missing entries
 * count as 0.
 */
export type VectorClock = Record<string, number>;

export function emptyClock(): VectorClock {
  return {};
}

export function copyClock(c: Readonly<VectorClock>): VectorClock {
  return { ...c };
}

/** True when every entry of `a` is at most the same entry of `b`: `a` is in `b`'s causal past (or equal). */
export function leq(a: Readonly<VectorClock>, b: Readonly<VectorClock>): boolean {
  for (const [k, v] of Object.entries(a)) if (v > (b[k] ?? 0)) return false;
  return true;
}

/** Pointwise maximum. */
export function merge(a: Readonly<VectorClock>, b: Readonly<VectorClock>): VectorClock {
  const out: VectorClock = { ...a };
  for (const [k, v] of Object.entries(b)) if (v > (out[k] ?? 0)) out[k] = v;
  return out;
}

/** Sum of all entries: strictly increases along causality, so it orders causally related writes correctly. */
export function clockSum(c: Readonly<VectorClock>): number {
  let s = 0;
  for (const v of Object.values(c)) s += v;
  return s;
}

/**
 * Parses causal metadata sent by a client or a peer: `null`/absent/empty string means "no dependencies",
 * a JSON string is decoded (header transport), otherwise it must be an object of non-negative integers.
 * Returns an error message instead of throwing so callers pick the HTTP status.
 */
export function parseClock(raw: unknown): VectorClock | string {
  if (raw === undefined || raw === null || raw === '') return {};
  if (typeof raw === 'string') {
    let decoded: unknown;
    try {
      decoded = JSON.parse(raw);
    } catch {
      return 'Causal metadata is not valid JSON';
    }
    if (typeof decoded === 'string') return 'Causal metadata must be an object or null';
    return parseClock(decoded);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) return 'Causal metadata must be an object or null';
  const out: VectorClock = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      return `Causal metadata entry "${k}" must be a non-negative integer`;
    }
    if (v > 0) out[k] = v;
  }
  return out;
}
