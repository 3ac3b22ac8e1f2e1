/**
 * Rotating the cluster secret of a running raft cluster, as docs/security.md describes: three steps (add,
 * promote, retire), each followed by a rolling restart; every restarted node rejoins (transport handshakes
 * and signed forwarding both ways) and the cluster serves writes throughout. At the end the old secret opens
 * nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PeerKeys, loadSecretFile, rotateSecretFile } from '../../src/net/peer-auth.js';
import { LocalCluster } from '../../src/server/local-cluster.js';
import { handshakeAs } from '../net/helpers.js';
import { FAST } from '../server/helpers.js';
import { eventually, send } from './helpers.js';

test('rotation: add, promote, retire with rolling restarts; writes never stop; the old secret is then refused', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-sec-rotate-'));
  const c = await LocalCluster.start({ nodes: 3, dir, ...FAST });
  try {
    const oldKeys: PeerKeys = loadSecretFile(c.secretFile).keys;
    await c.waitLeader(15_000);
    let n = 0;
    /** A write through node `id` (forwarded to the leader if it follows), retried briefly (elections). */
    const write = async (id: number): Promise<string> => {
      const key = `k${++n}`;
      await eventually(
        async () => (await send(`${c.url(id)}/kvs/${key}`, 'PUT', JSON.stringify({ value: n }))).status < 300,
        10_000,
        `write ${key} through node ${id}`,
      );
      return key;
    };
    for (const step of ['add', 'promote', 'retire'] as const) {
      rotateSecretFile(c.secretFile, step);
      for (const id of c.ids) {
        await c.kill(id, 'SIGTERM');
        // Two of three serve meanwhile.
        await write(c.ids.find((x) => x !== id) as number);
        await c.startNode(id);
        // The restarted node forwards a write (HTTP signed with its keys) and receives the leader's appends
        // (transport handshakes with the mixed keys).
        const key = await write(id);
        await eventually(
          async () => (await send(`${c.url(id)}/kvs/${key}?consistency=stale`, 'GET', undefined)).status === 200,
          10_000,
          `node ${id} caught up after ${step}`,
        );
      }
    }
    // Every node now holds only the new secret: the old one opens neither the peer port nor forwarding.
    const leader = await c.waitLeader(10_000);
    const follower = c.ids.find((x) => x !== leader) as number;
    const h = await handshakeAs(c.raftPorts.get(leader) as number, follower, leader, oldKeys);
    assert.equal(h.answer, 'closed');
    assert.equal(loadSecretFile(c.secretFile).keys.count, 1);
  } finally {
    await c.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});
