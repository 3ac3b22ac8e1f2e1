import type { Message, NodeId } from '../raft/types.js';
import type { EventQueue } from './queue.js';

/** Link behaviour of the simulated network; changed by the fault schedule. */
export interface LinkConditions {
  loss: number;
  duplicate: number;
  minDelay: number;
  maxDelay: number;
  /** Probability that a message takes up to `longDelay` instead (reordering). */
  longDelayProb: number;
  longDelay: number;
}

export const CALM: LinkConditions = {
  loss: 0,
  duplicate: 0,
  minDelay: 1,
  maxDelay: 3,
  longDelayProb: 0,
  longDelay: 0,
};

/**
 * A simulated network between cores: every message is delayed, and may be lost, duplicated or reordered;
 * links can be cut in one direction (asymmetric partitions) or both.
 */
export class SimNetwork {
  conditions: LinkConditions = { ...CALM };
  private readonly cut = new Set<string>();
  sent = 0;
  dropped = 0;
  /** A targeted loss: messages matching it are dropped (set by a nemesis for a while). */
  dropIf: ((m: Message) => boolean) | null = null;

  constructor(
    private readonly queue: EventQueue,
    private readonly rng: () => number,
    private readonly deliver: (m: Message) => void,
  ) {}

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(`${from}>${to}`);
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  /** Cuts every link between the two groups, both ways. */
  partition(a: readonly NodeId[], b: readonly NodeId[]): void {
    for (const x of a) {
      for (const y of b) {
        this.cutLink(x, y);
        this.cutLink(y, x);
      }
    }
  }

  heal(): void {
    this.cut.clear();
  }

  cutLinks(): string[] {
    return [...this.cut].sort();
  }

  send(m: Message): void {
    this.sent++;
    const c = this.conditions;
    if (this.isCut(m.from, m.to) || this.rng() < c.loss || this.dropIf?.(m)) {
      this.dropped++;
      return;
    }
    const copies = this.rng() < c.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let delay = c.minDelay + this.rng() * (c.maxDelay - c.minDelay);
      if (this.rng() < c.longDelayProb) delay = this.rng() * c.longDelay;
      this.queue.schedule(Math.round(delay), () => {
        // A link cut while the message was in flight drops it too.
        if (this.isCut(m.from, m.to)) this.dropped++;
        else this.deliver(m);
      });
    }
  }
}
