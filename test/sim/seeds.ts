import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { runSimulation, type SimOptions } from '../../src/sim/run.js';

/** Runs seeds [start, start + count) and fails on the first violation, naming the command that reproduces it. */
export function runSeeds(
  t: TestContext,
  start: number,
  count: number,
  nodes: SimOptions['nodes'],
  profile: NonNullable<SimOptions['profile']>,
): void {
  let ops = 0;
  let faults = 0;
  for (let seed = start; seed < start + count; seed++) {
    const r = runSimulation({ seed, nodes, profile });
    ops += r.ops;
    faults += Object.values(r.faults).reduce((a, b) => a + b, 0);
    assert.deepEqual(
      r.violations,
      [],
      `seed ${seed} (${nodes} nodes, ${profile}) failed; reproduce with: npm run sim -- --seeds 1 --start ${seed} --nodes ${nodes} --profile ${profile} --dump .sim-failures`,
    );
  }
  t.diagnostic(`${count} seeds, ${nodes} nodes, ${profile}: ${ops} operations checked, ${faults} faults injected`);
}
