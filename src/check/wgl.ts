/**
 * The Wing–Gong / Lowe search for one register (one key).
 *
 * - The operations' call and return entries form a doubly linked list ordered by time (calls first at
 *   equal times, so touching intervals are concurrent; an optional (`info`) operation returns at +∞).
 *   The calls before the first return entry are the "minimal" operations: the only ones that may be
 *   linearized next. Linearizing one unlinks its two entries (dancing links); backtracking relinks them.
 * - Depth-first search over configurations (set of linearized operations, register state), each explored
 *   at most once: a cache keyed by an incremental Zobrist hash, verified against an exact signature.
 *   The signature is compact because operations are numbered in invoke order: a watermark `w` (all
 *   required ops below it are linearized), the linearized required ops above it (at most about the
 *   concurrency), and the linearized optional ops.
 * - Pruning that keeps the search complete: a minimal read-only operation (get, failed cas, failed delete)
 *   that is feasible in the current state is linearized at once, without trying alternatives — if any
 *   linearization extends the configuration, one starts with it. Of minimal operations with the same
 *   transition only the one returning first is tried (it dominates the others). The rest are tried in
 *   invoke order, as the classic search does: in histories of a real system operations mostly take effect
 *   in the order they were invoked, so the first dive usually succeeds. (Trying the op whose return closes
 *   the window first committed to late writes early; on a long history with unknown operations the search
 *   then enumerated their subsets at the end and never came back: 60 s and 2 GB on a recorded history that
 *   invoke order decides in milliseconds.)
 * - An optional (`info`) operation is tried only if it makes some minimal operation feasible that is not
 *   feasible now. In any linearization an optional operation can be moved later until just before such an
 *   operation, or dropped (if a blind write or nothing observes its effect first), so this loses nothing.
 * - Success when every required operation is linearized; failure when the root has nothing left to try.
 */
import { ABSENT, Kind, step, type ModelOp } from './register.js';

export type SearchOutcome =
  | { readonly kind: 'ok' }
  | { readonly kind: 'timeout' }
  /** The memo table outgrew its budget (see searchRegister's `maxCacheBytes`). */
  | { readonly kind: 'memory' }
  | {
      readonly kind: 'fail';
      /** The deepest configuration reached: how many ops, the state, the window there. */
      readonly depth: number;
      readonly state: number;
      /** The operation whose return entry closes the window (-1: none), and the minimal operations. */
      readonly blocker: number;
      readonly candidates: readonly number[];
    };

interface CacheEntry {
  readonly signature: string;
  next: CacheEntry | undefined;
}

/** Deterministic xorshift32 for Zobrist keys. */
function xorshift(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

const isReadOnly = (m: ModelOp): boolean =>
  m.kind === Kind.Read || m.kind === Kind.CasFail || m.kind === Kind.DeleteFail;

/**
 * `ops` must be numbered in invoke order (sorted by invoke time). The search gives up at `deadline` (ms
 * since the epoch) or once its memo table holds about `maxCacheBytes` (estimated).
 */
export function searchRegister(
  ops: readonly ModelOp[],
  deadline: number,
  maxCacheBytes = Number.POSITIVE_INFINITY,
): SearchOutcome {
  const n = ops.length;
  const optional = new Uint8Array(n);
  let required = 0;
  ops.forEach((m, i) => {
    optional[i] = m.optional ? 1 : 0;
    if (!m.optional) required++;
  });

  // Entries: call of op i is node 2i, its return 2i+1; HEAD is node 2n.
  const order: number[] = [];
  for (let i = 0; i < n; i++) order.push(2 * i, 2 * i + 1);
  const time = (node: number): number => {
    const op = (ops[node >> 1] as ModelOp).op;
    return node & 1 ? op.completeTime : op.invokeTime;
  };
  order.sort((x, y) => time(x) - time(y) || (x & 1) - (y & 1) || x - y);
  const HEAD = 2 * n;
  const next = new Int32Array(2 * n + 1);
  const prev = new Int32Array(2 * n + 1);
  let last = HEAD;
  for (const node of order) {
    next[last] = node;
    prev[node] = last;
    last = node;
  }
  next[last] = -1;
  const unlink = (x: number): void => {
    next[prev[x] as number] = next[x] as number;
    if (next[x] !== -1) prev[next[x] as number] = prev[x] as number;
  };
  const relink = (x: number): void => {
    next[prev[x] as number] = x;
    if (next[x] !== -1) prev[next[x] as number] = x;
  };

  /** The minimal operations (calls before the first return entry) and the op of that return. */
  const window = (): { calls: number[]; blocker: number } => {
    const calls: number[] = [];
    let x = next[HEAD] as number;
    for (; x !== -1 && (x & 1) === 0; x = next[x] as number) calls.push(x >> 1);
    return { calls, blocker: x === -1 ? -1 : x >> 1 };
  };

  const candidates = (state: number): number[] => {
    const { calls } = window();
    // States in which some minimal operation, infeasible now, would become feasible.
    const wanted = new Set<number>();
    let anyOther = false;
    for (const o of calls) {
      const m = ops[o] as ModelOp;
      if (step(state, m) >= 0) {
        if (isReadOnly(m)) return [o];
        continue;
      }
      if (m.kind === Kind.Read || m.kind === Kind.Cas) wanted.add(m.a);
      else if (m.kind === Kind.DeleteFail) wanted.add(ABSENT);
      else anyOther = true; // a failed cas or a delete: any other state enables it
    }
    // Candidates with the same transition are interchangeable but for their deadlines: the one returning
    // first dominates (swapping the two in any linearization keeps it valid), so only it is tried.
    const byTransition = new Map<string, number>();
    for (const o of calls) {
      const m = ops[o] as ModelOp;
      const ns = step(state, m);
      if (ns < 0) continue;
      if (m.optional && !wanted.has(ns) && !(anyOther && ns !== state)) continue;
      const t = `${m.kind}:${m.a}:${m.b}`;
      const other = byTransition.get(t);
      if (other === undefined || (ops[other] as ModelOp).op.completeTime > m.op.completeTime) byTransition.set(t, o);
    }
    // Tried in invoke order (the window's order), as the classic WGL search does: in the histories a real
    // cluster produces, operations mostly take effect in the order they were invoked, so the first dive
    // usually succeeds. (Trying the blocker first made the search commit to late writes early and then
    // enumerate the unknown operations' subsets at the end of a long history.)
    const chosen = new Set(byTransition.values());
    return calls.filter((o) => chosen.has(o));
  };

  // The linearized set: flags, the watermark, the count of linearized required ops above it, optional ones.
  const linearized = new Uint8Array(n);
  let w = 0;
  while (w < n && optional[w]) w++;
  let above = 0;
  const optStack: number[] = [];
  const signature = (state: number): string => {
    let s = `${w}:${state}:`;
    let found = 0;
    for (let i = w + 1; found < above; i++) {
      if (linearized[i] && !optional[i]) {
        s += i.toString(36) + ',';
        found++;
      }
    }
    if (optStack.length > 0)
      s +=
        ':' +
        optStack
          .slice()
          .sort((a, b) => a - b)
          .join(',');
    return s;
  };

  const rand = xorshift(0x5eed1234);
  const z1 = new Uint32Array(n);
  const z2 = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    z1[i] = rand();
    z2[i] = rand();
  }
  const cache = new Map<number, CacheEntry>();
  /** Estimated bytes held by the cache: the signature strings plus the entry and map slot. */
  let cacheBytes = 0;
  let h1 = 0;
  let h2 = 0;
  /** Records the current configuration; false if it was seen before. */
  const remember = (state: number): boolean => {
    const h = h1 * 0x200000 + ((h2 ^ Math.imul(state + 1, 0x9e3779b1)) & 0x1fffff);
    const sig = signature(state);
    const head = cache.get(h);
    for (let e = head; e !== undefined; e = e.next) if (e.signature === sig) return false;
    cache.set(h, { signature: sig, next: head });
    cacheBytes += 2 * sig.length + 96;
    return true;
  };

  const stackOp = new Int32Array(n);
  const stackState = new Int32Array(n);
  const stackW = new Int32Array(n);
  const stackAbove = new Int32Array(n);
  const frameCands: number[][] = [candidates(ABSENT)];
  const framePos: number[] = [0];
  let depth = 0;
  let done = 0;
  let state = ABSENT;
  let iterations = 0;
  let best: SearchOutcome & { kind: 'fail' } = { kind: 'fail', depth: -1, state, blocker: -1, candidates: [] };

  const linearize = (o: number): void => {
    linearized[o] = 1;
    h1 = (h1 ^ (z1[o] as number)) >>> 0;
    h2 = (h2 ^ (z2[o] as number)) >>> 0;
    if (optional[o]) {
      optStack.push(o);
      return;
    }
    done++;
    if (o !== w) {
      above++;
      return;
    }
    w++;
    while (w < n && (optional[w] || linearized[w])) {
      if (linearized[w] && !optional[w]) above--;
      w++;
    }
  };
  const unlinearize = (o: number, prevW: number, prevAbove: number): void => {
    linearized[o] = 0;
    h1 = (h1 ^ (z1[o] as number)) >>> 0;
    h2 = (h2 ^ (z2[o] as number)) >>> 0;
    if (optional[o]) optStack.pop();
    else done--;
    w = prevW;
    above = prevAbove;
  };

  while (true) {
    if (done === required) return { kind: 'ok' };
    if ((++iterations & 0x3ff) === 0) {
      if (Date.now() > deadline) return { kind: 'timeout' };
      if (cacheBytes > maxCacheBytes) return { kind: 'memory' };
    }
    const cands = frameCands[depth] as number[];
    let advanced = false;
    while ((framePos[depth] as number) < cands.length) {
      const o = cands[(framePos[depth] as number)++] as number;
      const ns = step(state, ops[o] as ModelOp);
      const pw = w;
      const pa = above;
      linearize(o);
      if (!remember(ns)) {
        unlinearize(o, pw, pa);
        continue;
      }
      stackOp[depth] = o;
      stackState[depth] = state;
      stackW[depth] = pw;
      stackAbove[depth] = pa;
      depth++;
      state = ns;
      unlink(2 * o);
      unlink(2 * o + 1);
      frameCands[depth] = candidates(state);
      framePos[depth] = 0;
      advanced = true;
      break;
    }
    if (advanced) continue;
    // No extension of this configuration works: backtrack.
    if (depth > best.depth) {
      const win = window();
      best = { kind: 'fail', depth, state, blocker: win.blocker, candidates: win.calls };
    }
    if (depth === 0) return best;
    depth--;
    const o = stackOp[depth] as number;
    state = stackState[depth] as number;
    unlinearize(o, stackW[depth] as number, stackAbove[depth] as number);
    relink(2 * o + 1);
    relink(2 * o);
  }
}
