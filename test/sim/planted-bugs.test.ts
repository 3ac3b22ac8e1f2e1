import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PlantedBug } from '../../src/raft/types.js';
import { runSimulation, type SimOptions } from '../../src/sim/run.js';

/**
 * Proof that the checks bite: each known bug, planted alone, must be reported by the simulator within the
 * stated number of seeds (the runs are deterministic, so the seed that catches it is fixed until the code
 * changes; the budget leaves room for that).
 */
const cases: {
  bug: PlantedBug;
  nodes: SimOptions['nodes'];
  profile: NonNullable<SimOptions['profile']>;
  /** First seed (default 1). */
  from?: number;
  within: number;
}[] = [
  // The Figure 8 interleaving needs leaders struck right after winning, several times in a row. Since the
  // simulator drives the production host (batched proposals, leader appends always written in parallel)
  // it is rarer: seeds 1-5500 catch it at 1515 and 2359 only (`npm run sim -- --seeds 5500 --nodes 3
  // --profile leader-churn --bug commit-old-term-by-counting`). CI runs the slice holding the first one; the
  // deterministic scenario in test/raft/scenarios.test.ts covers the interleaving itself.
  { bug: 'commit-old-term-by-counting', nodes: 3, profile: 'leader-churn', from: 1501, within: 30 },
  // About one seed in a hundred crashes a node between voting and persisting (caught at seed 56).
  { bug: 'vote-not-persisted', nodes: 3, profile: 'mixed', within: 150 },
  { bug: 'vote-for-stale-log', nodes: 5, profile: 'mixed', within: 20 },
  { bug: 'read-without-confirmation', nodes: 5, profile: 'mixed', within: 80 },
  { bug: 'keep-conflicting-entries', nodes: 3, profile: 'mixed', within: 20 },
  { bug: 'apply-before-commit', nodes: 5, profile: 'mixed', within: 20 },
  // A leader whose own append is still being written is counted towards the quorum (caught at seed 1).
  { bug: 'count-self-before-durable', nodes: 3, profile: 'mixed', within: 10 },
];

for (const c of cases) {
  const from = c.from ?? 1;
  const name = `planted bug "${c.bug}" is reported within ${c.within} seeds from ${from} (${c.nodes} nodes, ${c.profile})`;
  test(name, (t) => {
    for (let seed = from; seed < from + c.within; seed++) {
      const r = runSimulation({ seed, nodes: c.nodes, profile: c.profile, plantedBugs: [c.bug] });
      if (r.violations.length > 0) {
        t.diagnostic(`caught at seed ${seed}: ${r.violations[0].split('\n')[0].slice(0, 200)}`);
        return;
      }
    }
    assert.fail(`the simulator did not report "${c.bug}" within ${c.within} seeds`);
  });
}
