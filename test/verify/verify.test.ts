/**
 * Bounded `quorumkv verify` runs (the CI slice): 3 real nodes under seeded faults for about 20 s each,
 * then the full checks. Each must pass with no violation and no lost write.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseHistory } from '../../src/check/linearizability.js';
import { runVerify } from '../../src/verify/run.js';
import type { FaultKind } from '../../src/verify/nemesis.js';

const quiet = { out: () => undefined, err: () => undefined };

async function scenario(faults: FaultKind[], seed: number): Promise<void> {
  const out = mkdtempSync(path.join(os.tmpdir(), 'qkv-verify-run-'));
  try {
    const s = await runVerify(
      { nodes: 3, durationS: 18, faults, seed, outDir: out, clients: 4, gapMs: [500, 2000], holdMs: [1000, 3000] },
      quiet,
    );
    assert.deepEqual(s.problems, [], s.linearizable.failure?.explanation);
    assert.equal(s.passed, true);
    assert.equal(s.linearizable.ok, true);
    assert.equal(s.lost.length, 0);
    assert.ok(s.faults.length >= 2, `faults were injected (${s.faults.length})`);
    assert.ok(s.faults.every((f) => faults.includes(f.kind) && f.end !== undefined));
    assert.ok(s.ops.ok > 100, `the workload made progress (${s.ops.ok} ok)`);
    assert.ok(s.recoverMs !== undefined && s.recoverMs <= s.recoverBoundMs);
    // The history file is the documented format and holds every recorded operation plus the final reads.
    const history = parseHistory(readFileSync(path.join(out, 'history.jsonl'), 'utf8'));
    assert.equal(history.filter((e) => e.type === 'invoke').length, s.linearizable.checkedOps);
    assert.equal(history.filter((e) => e.process === 'final' && e.type === 'ok').length, s.finalValues.size);
    const report = readFileSync(path.join(out, 'report.txt'), 'utf8');
    assert.match(report, /verdict: PASS/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

describe('bounded verify runs', { timeout: 150_000 }, () => {
  test('kill, pause and partition combined', () => scenario(['kill', 'pause', 'partition'], 101));
  test('partitions only (refused and black-holed links)', () => scenario(['partition'], 202));
});
