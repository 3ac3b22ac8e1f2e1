/**
 * The disk-full fault on real processes (root only: each node's data directory is a small tmpfs): a node
 * whose disk fills up stops acknowledging (its log writes wait for room and it says so on /health), the
 * others go on, nothing acknowledged is lost or damaged, and it serves again once space returns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runVerify } from '../../src/verify/run.js';

function canMount(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (mounts a small tmpfs per node)';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'cannot mount a tmpfs here';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const skip = canMount();

test(
  'verify with disk-full faults: nodes stall while full, serve again after, nothing is lost',
  { skip, timeout: 120_000 },
  async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'qkv-verify-disk-'));
    try {
      const s = await runVerify(
        {
          nodes: 3,
          durationS: 15,
          faults: ['disk-full'],
          seed: 8,
          outDir: out,
          clients: 4,
          gapMs: [500, 1500],
          holdMs: [1000, 2500],
        },
        { out: () => undefined, err: () => undefined },
      );
      assert.deepEqual(s.problems, [], s.linearizable.failure?.explanation);
      assert.equal(s.passed, true);
      assert.equal(s.lost.length, 0, 'no acknowledged write lost (the full restart read every log back)');
      const full = s.faults.filter((f) => f.kind === 'disk-full');
      assert.ok(full.length >= 2, `disk-full faults injected: ${full.length}`);
      const stalled = full.filter((f) => f.stalledAfterMs !== undefined);
      assert.ok(stalled.length >= 1, 'a node with a full disk reported its writes waiting');
      assert.ok(s.ops.ok > 100, `the workload made progress (${s.ops.ok} ok)`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  },
);
