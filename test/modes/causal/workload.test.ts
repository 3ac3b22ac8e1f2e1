/**
 * Randomized multi-client workload with partitions and failures on three replica processes, checked for
 * causal consistency; and the same workload against a planted bug, which the checker must catch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCausal, formatCausalReport } from '../../../src/check/causal.js';
import { call, eventually, spawnCluster } from './helpers.js';
import { probeSession, runWorkload } from './workload.js';

test('randomized workload with partitions: 0 causal violations, and replicas converge', async (t) => {
  const rs = await spawnCluster(3);
  try {
    const res = await runWorkload(rs, { durationMs: 6000, clients: 6, keys: 5, seed: 42, faultEveryMs: 600 });
    const report = checkCausal(res.history);
    t.diagnostic(
      `causal workload: ${formatCausalReport(report).replaceAll('\n', '; ')}; 503s ${res.unavailable}, ` +
        `indeterminate ${res.indeterminate}, faults ${res.faults}`,
    );
    // The shared 2-core machine may be slow; even then the run must do real work.
    assert.ok(report.reads >= 20 && report.writes >= 20, 'the workload did real work');
    assert.ok(res.faults >= 5);
    assert.equal(report.violations.length, 0, formatCausalReport(report));
    // The scripted session: a cut-off replica refuses a client that saw a newer write, then serves it.
    const probe = await probeSession(rs);
    assert.ok(probe.refused >= 1, 'the cut-off replica answered 503');
    const probeReport = checkCausal(probe.history);
    assert.equal(probeReport.violations.length, 0, formatCausalReport(probeReport));
    assert.deepEqual(probe.history.at(-1)?.value, 'probe-1');
    // Once writes stop and the network heals, every replica holds the same data.
    const keys = Array.from({ length: 5 }, (_, i) => `k${i}`);
    const snapshot = async (url: string): Promise<string> =>
      JSON.stringify(
        await Promise.all(keys.map(async (k) => (await call(url, 'GET', `/kvs/${k}`)).body.value ?? null)),
      );
    let snaps: string[] = [];
    assert.ok(
      await eventually(async () => {
        snaps = await Promise.all(rs.map((r) => snapshot(r.url)));
        return snaps.every((s) => s === snaps[0]);
      }, 10_000),
      `replicas diverge: ${snaps.join(' | ')}`,
    );
  } finally {
    await Promise.all(rs.map((r) => r.kill()));
  }
});

test('planted bug (dependency check skipped): the checker reports violations', async (t) => {
  const rs = await spawnCluster(3, { NODE_ENV: 'test', QKV_CAUSAL_SKIP_DEPS: '1' });
  try {
    const res = await runWorkload(rs, {
      durationMs: 5000,
      clients: 6,
      // Many keys: a cut-off replica then still holds old values that clients have seen overwritten.
      keys: 10,
      seed: 7,
      faultEveryMs: 600,
      checkEveryMs: 1000,
      stopWhen: (h) => checkCausal(h).violations.length > 0,
    });
    const random = checkCausal(res.history);
    t.diagnostic(`planted bug, random workload: ${formatCausalReport(random, 3).replaceAll('\n', '; ')}`);
    // The scripted session hits the bug every time: the cut-off replica serves a read it cannot cover.
    const probe = await probeSession(rs);
    assert.equal(probe.refused, 0);
    const probeReport = checkCausal(probe.history);
    assert.ok(probeReport.counts['read-your-writes'] >= 1, formatCausalReport(probeReport));
    const all = checkCausal([...res.history, ...probe.history]);
    t.diagnostic(`planted bug, whole history: ${formatCausalReport(all, 3).replaceAll('\n', '; ')}`);
    assert.ok(all.violations.length > 0, 'skipping the dependency check must be caught');
  } finally {
    await Promise.all(rs.map((r) => r.kill()));
  }
});
