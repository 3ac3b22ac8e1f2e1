/**
 * Hybrid logical clock: physical milliseconds plus a logical counter, with the writing node's id as the final
 * tie-break, so every write gets a timestamp that is unique, totally ordered, and never behind what this
 * node has already seen (even if its wall clock is behind a peer's).
 */
export interface Hlc {
  readonly wall: number;
  readonly logical: number;
  readonly node: string;
}

/** Total order: wall, then logical, then node id. */
export function compareHlc(a: Hlc, b: Hlc): number {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  if (a.node === b.node) return 0;
  return a.node < b.node ? -1 : 1;
}

export function formatHlc(t: Hlc): string {
  return `${t.wall}.${t.logical}@${t.node}`;
}

/** Validates an HLC received from the wire; returns undefined if it is not one. */
export function parseHlc(x: unknown): Hlc | undefined {
  if (x === null || typeof x !== 'object') return undefined;
  const o = x as Record<string, unknown>;
  if (typeof o.wall !== 'number' || !Number.isSafeInteger(o.wall) || o.wall < 0) return undefined;
  if (typeof o.logical !== 'number' || !Number.isSafeInteger(o.logical) || o.logical < 0) return undefined;
  if (typeof o.node !== 'string' || o.node.length === 0) return undefined;
  return { wall: o.wall, logical: o.logical, node: o.node };
}

export class HybridClock {
  private wall = 0;
  private logical = 0;

  constructor(
    private nodeId: string,
    private readonly now: () => number = Date.now,
  ) {}

  get node(): string {
    return this.nodeId;
  }

  /** Names the node once its id is known (before its first write). */
  setNode(id: string): void {
    this.nodeId = id;
  }

  /** A fresh timestamp for a local write, strictly greater than every timestamp issued or observed so far. */
  tick(): Hlc {
    const pt = this.now();
    if (pt > this.wall) {
      this.wall = pt;
      this.logical = 0;
    } else {
      this.logical++;
    }
    return { wall: this.wall, logical: this.logical, node: this.nodeId };
  }

  /** Folds in a timestamp seen on a replicated write, so later local writes order after it. */
  observe(remote: Hlc): void {
    const pt = this.now();
    const wall = Math.max(this.wall, remote.wall, pt);
    let logical: number;
    if (wall === this.wall && wall === remote.wall) logical = Math.max(this.logical, remote.logical) + 1;
    else if (wall === this.wall) logical = this.logical + 1;
    else if (wall === remote.wall) logical = remote.logical + 1;
    else logical = 0;
    this.wall = wall;
    this.logical = logical;
  }
}
