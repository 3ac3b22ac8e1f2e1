import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePorts, spawnModeNode, type SpawnedNode } from '../../../src/modes/common/spawn.js';
import {
  findLostWrites,
  waitForConvergence,
  type AckedWrite,
  type FinalRecord,
} from '../../../src/check/convergence.js';
import { compareHlc, parseHlc, type Hlc } from '../../../src/modes/eventual/hlc.js';
import { makeRng as rng } from '../../../src/raft/rng.js';

/** A guard against a hung test, not a timing assertion: the machine may be heavily loaded. */
const CALL_TIMEOUT_MS = 15_000;

// Three eventual replicas as child processes, anti-entropy every 100 ms.
const AE_MS = 100;
/**
 * The stated bound: once writes stop and every replica is up, all replicas are identical within this. It is
 * about 2 intervals plus a round when the machine is idle; the margin is for a loaded 2-core CI machine.
 */
const CONVERGENCE_BOUND_MS = 10_000;

let ports: number[] = [];
const nodes: SpawnedNode[] = [];
const urls = () => ports.map((p) => `http://127.0.0.1:${p}`);

function startReplica(i: number): Promise<SpawnedNode> {
  const peers = ports.filter((_, j) => j !== i).map((p) => `127.0.0.1:${p}`);
  return spawnModeNode('eventual', [
    '--id',
    `r${i + 1}`,
    '--port',
    String(ports[i]),
    '--peers',
    peers.join(','),
    '--anti-entropy-interval',
    String(AE_MS),
    '--catch-up-timeout',
    '1000',
    '--peer-timeout',
    '500',
  ]);
}

async function call(method: string, url: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function finalState(snapshot: { records: ReadonlyMap<string, string> }): Map<string, FinalRecord<Hlc>> {
  const out = new Map<string, FinalRecord<Hlc>>();
  for (const [k, json] of snapshot.records) {
    const r = JSON.parse(json) as { value?: unknown; timestamp: unknown; deleted?: boolean };
    const ts = parseHlc(r.timestamp);
    assert.ok(ts, `timestamp of ${k}`);
    out.set(k, { value: r.value, deleted: r.deleted === true, order: ts });
  }
  return out;
}

before(async () => {
  ports = await freePorts(3);
  nodes.push(...(await Promise.all([0, 1, 2].map(startReplica))));
});

after(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
});

test('random workload with failures and recoveries: replicas converge and no acknowledged write is lost', async (t) => {
  const seed = Number(process.env.EVENTUAL_SEED ?? Date.now() % 1_000_000);
  const rand = rng(seed);
  const acked: AckedWrite<Hlc>[] = [];
  let failed: number | undefined;
  let rejected = 0;
  const keys = Array.from({ length: 25 }, (_, i) => `key-${i}`);

  let chaosSteps = 0;
  // Each worker does at least `ops` operations and keeps going until the chaos loop failed and recovered
  // replicas several times, however fast the machine is.
  const worker = async (w: number, ops: number) => {
    for (let i = 0; i < ops || chaosSteps < 8; i++) {
      const r = Math.floor(rand() * 3);
      const key = keys[Math.floor(rand() * keys.length)];
      const url = `${urls()[r]}/kvs/${key}`;
      if (rand() < 0.2) {
        const res = await call('DELETE', url);
        if (res.status === 200) {
          acked.push({ key, value: null, deleted: true, order: parseHlc(res.body.timestamp) as Hlc });
        } else if (res.status === 503) rejected++;
        else assert.equal(res.status, 404);
      } else {
        const value = { w, i, seed };
        const res = await call('PUT', url, { value });
        if (res.status === 200 || res.status === 201) {
          assert.equal(res.body.node_id, `r${r + 1}`);
          acked.push({ key, value, deleted: false, order: parseHlc(res.body.timestamp) as Hlc });
        } else {
          assert.equal(res.status, 503, JSON.stringify(res.body));
          rejected++;
        }
      }
    }
  };
  const chaos = async (stop: () => boolean) => {
    while (!stop()) {
      await new Promise((r) => setTimeout(r, 80 + rand() * 150));
      if (failed === undefined) {
        failed = Math.floor(rand() * 3);
        assert.equal((await call('POST', `${urls()[failed]}/admin/fail`)).body.status, 'failed');
      } else {
        const res = await call('POST', `${urls()[failed]}/admin/recover`);
        assert.equal(res.body.status, 'serving');
        failed = undefined;
      }
      chaosSteps++;
    }
  };
  let done = false;
  const chaosRun = chaos(() => done);
  await Promise.all([0, 1, 2, 3].map((w) => worker(w, 60)));
  done = true;
  await chaosRun;
  if (failed !== undefined) await call('POST', `${urls()[failed]}/admin/recover`);

  const report = await waitForConvergence(urls(), { timeoutMs: CONVERGENCE_BOUND_MS, intervalMs: 25 });
  assert.ok(
    report.converged,
    `seed ${seed}: not converged in ${CONVERGENCE_BOUND_MS} ms: ${JSON.stringify(report.divergences.slice(0, 3))}`,
  );
  t.diagnostic(
    `seed ${seed}: ${acked.length} writes acknowledged, ${rejected} refused; converged in ${report.elapsedMs} ms`,
  );
  const lost = findLostWrites(acked, finalState(report.snapshots[0]), compareHlc);
  assert.deepEqual(lost, [], `seed ${seed}: lost acknowledged writes`);
  assert.ok(acked.length > 50, `seed ${seed}: only ${acked.length} writes acknowledged`);
  assert.ok(rejected > 0, `seed ${seed}: the failures never rejected a write`);
});

test('a restarted replica (process killed) re-synchronises before it serves', async () => {
  for (let i = 0; i < 50; i++) {
    const res = await call('PUT', `${urls()[i % 2]}/kvs/restart-${i}`, { value: i });
    assert.equal(res.status, 201);
  }
  await nodes[2].stop(true);
  for (let i = 50; i < 80; i++) await call('PUT', `${urls()[i % 2]}/kvs/restart-${i}`, { value: i });
  await call('DELETE', `${urls()[0]}/kvs/restart-3`);
  nodes[2] = await startReplica(2);
  // It printed its listening line only after catching up: it already holds everything.
  for (const i of [0, 49, 50, 79]) {
    const got = await call('GET', `${urls()[2]}/kvs/restart-${i}`);
    assert.deepEqual([got.status, got.body.value, got.body.node_id], [200, i, 'r3']);
  }
  assert.equal((await call('GET', `${urls()[2]}/kvs/restart-3`)).status, 404);
  const report = await waitForConvergence(urls(), { timeoutMs: CONVERGENCE_BOUND_MS });
  assert.ok(report.converged);
});
