import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostBug } from '../../src/sim/planted-host.js';
import { runSimulation, type SimOptions } from '../../src/sim/run.js';

/**
 * The simulator drives the production host loop (src/server/driver.ts): bugs planted in that loop must be
 * reported within the stated number of seeds, as the core's planted bugs are (planted-bugs.test.ts).
 */
const cases: { bug: HostBug; nodes: SimOptions['nodes']; within: number; finds: RegExp }[] = [
  // Caught at seed 1 when written (a lost acknowledged write, or state machines that differ).
  { bug: 'answer-before-commit', nodes: 3, within: 10, finds: /linearizability|convergence|state machine safety/ },
  // Caught at seed 1: followers acknowledge entries still in flight, so commits count non-durable copies.
  { bug: 'send-before-durable', nodes: 3, within: 10, finds: /durability/ },
  // Needs a crash between granting a vote and the next write (caught at seed 13 when written).
  { bug: 'hold-term-vote', nodes: 3, within: 60, finds: /election safety|linearizability|committed entry lost/ },
];

for (const c of cases) {
  test(`planted host bug "${c.bug}" is reported within ${c.within} seeds (${c.nodes} nodes)`, (t) => {
    for (let seed = 1; seed <= c.within; seed++) {
      const r = runSimulation({ seed, nodes: c.nodes, profile: 'mixed', hostBugs: [c.bug] });
      if (r.violations.length > 0) {
        t.diagnostic(`caught at seed ${seed}: ${r.violations[0].split('\n')[0].slice(0, 200)}`);
        assert.match(r.violations.join('\n'), c.finds);
        return;
      }
    }
    assert.fail(`the simulator did not report "${c.bug}" within ${c.within} seeds`);
  });
}

test('the same seeds without a planted bug pass', () => {
  for (let seed = 1; seed <= 15; seed++) {
    const r = runSimulation({ seed, nodes: 3, profile: 'mixed' });
    assert.deepEqual(r.violations, [], `seed ${seed}`);
  }
});
