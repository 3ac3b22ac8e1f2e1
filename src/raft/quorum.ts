import type { NodeId } from './types.js';

/**
 * The majority arithmetic of one configuration of voters (etcd's `quorum` package is the model): what a
 * majority of them has reached, how an election stands, whether a set of nodes makes a quorum. Everything
 * in the core that counts towards a majority asks this, so that a change of configuration is a change of
 * one object rather than of every place that counts.
 */
export class MajorityConfig {
  readonly voters: readonly NodeId[];
  /** How many voters make a majority. */
  readonly majority: number;

  constructor(voters: readonly NodeId[]) {
    this.voters = [...new Set(voters)].sort((a, b) => a - b);
    this.majority = majorityOf(this.voters.length);
  }

  /**
   * The greatest value a majority of the voters has reached, given each voter's value: the commit index
   * from match indexes, the latest tick a quorum has answered by from each voter's last answer.
   */
  committedValue(valueOf: (id: NodeId) => number): number {
    const values = this.voters.map(valueOf).sort((a, b) => b - a);
    return values[this.majority - 1] ?? 0;
  }

  /** An election's standing from the votes received so far (votes of non-voters do not count). */
  voteResult(votes: ReadonlyMap<NodeId, boolean>): 'won' | 'lost' | 'pending' {
    let yes = 0;
    let no = 0;
    for (const id of this.voters) {
      const v = votes.get(id);
      if (v === true) yes++;
      else if (v === false) no++;
    }
    if (yes >= this.majority) return 'won';
    return no > this.voters.length - this.majority ? 'lost' : 'pending';
  }

  /** Whether the voters among `ids` are a majority. */
  isQuorum(ids: ReadonlySet<NodeId>): boolean {
    let n = 0;
    for (const id of this.voters) if (ids.has(id)) n++;
    return n >= this.majority;
  }
}

/** How many of `n` voters make a majority. */
export function majorityOf(n: number): number {
  return Math.floor(n / 2) + 1;
}
