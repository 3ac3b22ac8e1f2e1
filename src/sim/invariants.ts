import type { RaftNode } from '../raft/node.js';
import type { Entry, NodeId } from '../raft/types.js';
import type { MemoryStorage } from '../storage/memory.js';

/** A short, collision-resistant-enough fingerprint of an entry's content, for comparisons. */
export function entryDigest(e: Entry): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < e.data.length; i++) h = Math.imul(h ^ e.data[i], 0x01000193);
  return `${e.term}/${e.type}/${e.data.length}/${(h >>> 0).toString(36)}`;
}

export interface NodeView {
  readonly id: NodeId;
  readonly up: boolean;
  readonly node: RaftNode | null;
  readonly storage: MemoryStorage;
}

/**
 * Raft's safety properties, checked as the simulation runs:
 * - election safety: at most one leader per term;
 * - log matching: entries with the same index and term hold the same command and follow the same term;
 * - leader completeness: a new leader's log holds every entry committed in an earlier term (a leader of an
 *   older term, elected late on delayed votes, need not hold what a newer term committed meanwhile);
 * - state machine safety: no two nodes apply different commands at one index;
 * - durability: a committed entry is durable on a majority when first seen committed, and never changes.
 */
export class InvariantChecker {
  readonly violations: string[] = [];
  private readonly leaders = new Map<number, NodeId>();
  private readonly entries = new Map<string, { digest: string; prevTerm: number }>();
  private readonly committed = new Map<number, string>();
  /** The term in which each committed index was first seen committed (the committing leader's term). */
  private readonly commitTerms = new Map<number, number>();
  private readonly applied = new Map<number, string>();
  private readonly seenCommit = new Map<NodeId, number>();
  private maxCommitted = 0;

  constructor(
    private readonly quorum: number,
    private readonly now: () => number,
  ) {}

  private fail(msg: string): void {
    if (this.violations.length < 20) this.violations.push(`t=${this.now()}: ${msg}`);
  }

  /** Entries a node is about to persist; `prevTerm` is the term of the entry before the first. */
  onPersist(id: NodeId, ents: readonly Entry[], prevTerm: number | undefined): void {
    let prev = prevTerm;
    for (const e of ents) {
      const key = `${e.index}:${e.term}`;
      const digest = entryDigest(e);
      const seen = this.entries.get(key);
      if (!seen) {
        if (prev !== undefined) this.entries.set(key, { digest, prevTerm: prev });
      } else if (seen.digest !== digest) {
        this.fail(`log matching: node ${id} has a different entry at index ${e.index} term ${e.term}`);
      } else if (prev !== undefined && seen.prevTerm !== prev) {
        this.fail(
          `log matching: node ${id} entry ${e.index}@${e.term} follows term ${prev}, elsewhere term ${seen.prevTerm}`,
        );
      }
      prev = e.term;
    }
  }

  onApply(id: NodeId, e: Entry): void {
    const d = entryDigest(e);
    const seen = this.applied.get(e.index);
    if (seen === undefined) this.applied.set(e.index, d);
    else if (seen !== d)
      this.fail(`state machine safety: node ${id} applied ${d} at index ${e.index}, another ${seen}`);
  }

  /** Called after every step: checks leaders and newly committed entries of every live node. */
  afterStep(nodes: readonly NodeView[]): void {
    for (const v of nodes) {
      const node = v.node;
      if (!v.up || !node) continue;
      if (node.currentRole === 'leader') {
        const term = node.currentTerm;
        const prev = this.leaders.get(term);
        if (prev === undefined) {
          this.leaders.set(term, v.id);
          this.checkCompleteness(v);
        } else if (prev !== v.id) {
          this.fail(`election safety: nodes ${prev} and ${v.id} both lead term ${term}`);
        }
      }
      const commit = node.commitIndex;
      const seen = this.seenCommit.get(v.id) ?? 0;
      if (commit > seen) {
        this.seenCommit.set(v.id, commit);
        this.recordCommitted(v, Math.max(seen + 1, node.firstIndex), commit, nodes);
      } else if (commit < seen) {
        this.seenCommit.set(v.id, commit); // restarted: its commit index restarts from what it persisted
      }
    }
  }

  private recordCommitted(v: NodeView, lo: number, hi: number, nodes: readonly NodeView[]): void {
    if (!v.node || lo > hi) return;
    for (const e of v.node.logEntries(lo, hi + 1)) {
      const d = entryDigest(e);
      const seen = this.committed.get(e.index);
      if (seen === undefined) {
        this.committed.set(e.index, d);
        this.commitTerms.set(e.index, v.node.currentTerm);
        if (e.index > this.maxCommitted) this.maxCommitted = e.index;
        if (this.durableCopies(e, nodes) < this.quorum) {
          this.fail(`durability: entry ${e.index}@${e.term} committed but durable on fewer than ${this.quorum} nodes`);
        }
      } else if (seen !== d) {
        this.fail(`committed entry lost: node ${v.id} commits ${d} at index ${e.index}, previously committed ${seen}`);
      }
    }
  }

  private durableCopies(e: Entry, nodes: readonly NodeView[]): number {
    let n = 0;
    for (const v of nodes) {
      const st = v.storage;
      if (st.snapshot().metadata.index >= e.index) n++;
      else if (e.index >= st.firstIndex() && e.index <= st.lastIndex() && st.term(e.index) === e.term) n++;
    }
    return n;
  }

  private checkCompleteness(v: NodeView): void {
    if (!v.node) return;
    const s = v.node.status();
    const snapIndex = s.firstIndex - 1;
    for (const [index, digest] of this.committed) {
      if (index <= snapIndex || (this.commitTerms.get(index) ?? 0) >= s.term) continue;
      const [e] = index <= s.lastIndex ? v.node.logEntries(index, index + 1) : [];
      if (!e || entryDigest(e) !== digest) {
        this.fail(`leader completeness: leader ${v.id} of term ${s.term} lacks committed entry ${index} (${digest})`);
        return;
      }
    }
  }

  get committedCount(): number {
    return this.committed.size;
  }

  get leaderTerms(): number {
    return this.leaders.size;
  }
}
