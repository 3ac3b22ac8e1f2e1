import type { Command } from '../kv/commands.js';
import type { ApplyResult } from '../kv/results.js';
import type { Entry, Ready } from '../raft/types.js';
import { RaftHost, type HostOptions } from '../server/driver.js';

/**
 * Bugs planted in the production host loop, to show that the simulator, which drives that loop, finds
 * them. Each is a subclass overriding one of the host's decision points; the production interface has no
 * switch for them.
 * - `answer-before-commit`: a leader applies its own entries and answers their clients as soon as its own
 *   write of them is durable, before a majority has them (the entry may then be lost to another leader).
 * - `send-before-durable`: a Ready's messages go out when its write starts rather than once it is durable —
 *   a follower acknowledges entries, and a node grants votes, that a crash can still take away.
 * - `hold-term-vote`: a change of term or vote is held back like a change of the commit index alone (sent
 *   at once, written with the next entries), so a crash can forget a vote already granted.
 */
export type HostBug = 'answer-before-commit' | 'send-before-durable' | 'hold-term-vote';

export const HOST_BUGS: readonly HostBug[] = ['answer-before-commit', 'send-before-durable', 'hold-term-vote'];

type Host = RaftHost<ApplyResult, Command>;
type HostClass = new (opts: HostOptions<ApplyResult, Command>) => Host;

/**
 * The host class the simulator runs: the production RaftHost, reporting each entry it applies to
 * `onApply` (for the invariant checker), with `bugs` planted.
 */
export function simHostClass(bugs: readonly HostBug[], onApply: (e: Entry) => void): HostClass {
  const has = (b: HostBug) => bugs.includes(b);
  return class SimRaftHost extends RaftHost<ApplyResult, Command> {
    /** The leader's own entries written while it went on, not yet durable here. */
    private unacknowledged: Entry[] = [];

    protected override commitOnly(rd: Ready): boolean {
      if (has('hold-term-vote') && rd.entries.length === 0 && rd.snapshot === undefined && rd.hardState) return true;
      return super.commitOnly(rd);
    }

    protected override advancesBeforeDurable(rd: Ready): boolean {
      const early = super.advancesBeforeDurable(rd);
      // Sent again once durable: Raft tolerates the duplicates; the harm is in the first copy.
      if (has('send-before-durable') && !early) this.send(rd.messages);
      return early;
    }

    protected override afterSave(rd: Ready, durable = true): void {
      if (has('answer-before-commit') && !durable) this.unacknowledged.push(...rd.entries);
      super.afterSave(rd, durable);
    }

    protected override appendDurable(index: number, term: number): void {
      super.appendDurable(index, term);
      if (!has('answer-before-commit')) return;
      const ready = this.unacknowledged.filter((e) => e.index <= index && e.index > this.applied);
      this.unacknowledged = this.unacknowledged.filter((e) => e.index > index);
      this.applyEntries(ready);
    }

    protected override applyEntries(entries: readonly Entry[]): void {
      // Entries at or below `applied` are skipped by the host (covered by a snapshot, or applied early).
      for (const e of entries) if (e.index > this.applied) onApply(e);
      super.applyEntries(entries);
    }
  };
}
