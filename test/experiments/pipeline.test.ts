import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QUICK } from '../../src/experiments/config.js';
import { renderExisting, runPipeline } from '../../src/experiments/pipeline.js';
import type { Point } from '../../src/experiments/run.js';

function plausible(p: Point, what: string): void {
  assert.ok(p.throughput > 0, `${what}: throughput ${p.throughput}`);
  for (const [name, h] of [
    ['put', p.put],
    ['get', p.get],
  ] as const) {
    assert.ok(h.count > 0, `${what}: no ${name}s`);
    assert.ok(h.p50Ms > 0, `${what}: ${name} p50 ${h.p50Ms}`);
    assert.ok(h.p99Ms >= h.p50Ms, `${what}: ${name} p99 ${h.p99Ms} < p50 ${h.p50Ms}`);
    assert.ok(h.maxMs >= h.p99Ms, `${what}: ${name} max < p99`);
  }
  const s = p.staleness;
  assert.ok(s.fraction >= 0 && s.fraction <= 1, `${what}: stale fraction ${s.fraction}`);
  assert.ok(s.stale <= s.reads, `${what}: more stale reads than reads`);
  if (s.stale > 0) assert.ok(s.meanVersionsBehind >= 1, `${what}: stale reads must be at least one version behind`);
}

test(
  'the experiment pipeline runs on the quick configuration and writes a plausible report',
  { timeout: 240_000 },
  async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-exp-test-'));
    try {
      const { results, files } = await runPipeline(QUICK, dir, () => {});
      for (const f of files) assert.ok(existsSync(f), `missing ${f}`);

      // (a) one point per (delay, W), all plausible; with W = every follower no acknowledged write is missed.
      assert.equal(results.quorum.length, QUICK.delays.length * QUICK.writeQuorums.length);
      for (const p of results.quorum) {
        plausible(p, p.label);
        if (p.writeQuorum === QUICK.quorumFollowers)
          assert.equal(p.staleness.stale, 0, `${p.label}: stale reads with W = N`);
      }
      // (b) every strategy that is built; linearizable raft reads are never stale.
      const names = results.strategies.points.map((p) => p.strategy);
      for (const s of ['raft linearizable', 'raft stale reads', 'eventual']) assert.ok(names.includes(s), `no ${s}`);
      assert.equal(results.strategies.points.length + results.strategies.skipped.length, 5);
      for (const p of results.strategies.points) plausible(p, p.strategy);
      const lin = results.strategies.points.find((p) => p.strategy === 'raft linearizable');
      assert.equal(lin?.staleness.stale, 0);
      // (c) one point per client count.
      assert.deepEqual(
        results.scale.map((p) => p.clients),
        [...QUICK.scaleClients],
      );
      for (const p of results.scale) plausible(p, p.label);
      // (d) the leader kill: a new leader and a finite, positive outage.
      assert.equal(results.failover.length, QUICK.failoverTrials);
      for (const t of results.failover) {
        assert.notEqual(t.newLeader, undefined);
        assert.notEqual(t.newLeader, t.killedNode);
        assert.ok(t.unavailableMs !== undefined && t.unavailableMs > 0, `unavailable ${t.unavailableMs}`);
        assert.ok(t.okWrites > 0);
      }

      // (e) one point per (nodes, op, clients), each with its own operation measured and the CPU it cost.
      const nc = results.nodeCount ?? [];
      assert.equal(nc.length, QUICK.nodeCounts.length * 2 * QUICK.nodeCountClients.length);
      assert.deepEqual([...new Set(nc.map((p) => p.nodes))], [...QUICK.nodeCounts]);
      for (const p of nc) {
        const h = p.op === 'put' ? p.put : p.get;
        const other = p.op === 'put' ? p.get : p.put;
        assert.ok(p.throughput > 0 && h.count > 0 && h.p50Ms > 0 && h.p99Ms >= h.p50Ms, p.label);
        assert.equal(other.count, 0, `${p.label}: only ${p.op}s`);
        assert.equal(p.errors, 0, p.label);
        if (p.leaderCpuMsPerOp !== undefined) {
          assert.ok(p.leaderCpuMsPerOp >= 0 && (p.clusterCpuMsPerOp ?? 0) >= p.leaderCpuMsPerOp, p.label);
        }
      }

      const html = readFileSync(path.join(dir, 'report.html'), 'utf8');
      assert.match(html, /^<!doctype html>/);
      assert.ok((html.match(/<svg /g) ?? []).length >= 8, 'expected the eight charts');
      assert.doesNotMatch(html, /NaN|undefined|Infinity/);
      assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'report must be self-contained');
      const summary = readFileSync(path.join(dir, 'SUMMARY.md'), 'utf8');
      for (const h of [
        '(a) Quorum mode',
        '(b) Strategies',
        '(c) Raft',
        '(d) Raft leader kill',
        '(e) Raft as the cluster',
      ])
        assert.ok(summary.includes(h), h);
      const raw = JSON.parse(readFileSync(path.join(dir, 'strategies.json'), 'utf8')) as { points: unknown[] };
      assert.equal(raw.points.length, results.strategies.points.length);
      // Re-rendering from the JSON files gives the same report.
      renderExisting(dir);
      assert.equal(readFileSync(path.join(dir, 'report.html'), 'utf8'), html);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
