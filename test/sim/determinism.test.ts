import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimulation } from '../../src/sim/run.js';

test('the same seed always gives the same run: identical history, trace and figures', () => {
  for (const [seed, nodes, profile] of [
    [42, 3, 'mixed'],
    [7, 5, 'leader-churn'],
  ] as const) {
    const a = runSimulation({ seed, nodes, profile, trace: true });
    const b = runSimulation({ seed, nodes, profile, trace: true });
    assert.ok(a.trace.length > 1000, 'the trace records the run');
    assert.deepEqual(a.trace, b.trace);
    assert.deepEqual(a.history, b.history);
    assert.deepEqual([a.steps, a.messages, a.committed, a.faults], [b.steps, b.messages, b.committed, b.faults]);
    const c = runSimulation({ seed: seed + 1, nodes, profile });
    assert.notDeepEqual(c.history, a.history, 'another seed gives another run');
  }
});
