import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeCommand } from '../../src/kv/commands.js';
import type { ApplyResult } from '../../src/kv/results.js';
import { KvStateMachine } from '../../src/kv/state-machine.js';
import { RaftNode } from '../../src/raft/node.js';
import { makeRng } from '../../src/raft/rng.js';
import type { Message, NodeId } from '../../src/raft/types.js';
import { HostError, RaftHost } from '../../src/server/driver.js';
import { hostStorageOf } from '../../src/server/host-ports.js';
import type { PeerTransport } from '../../src/server/host-ports.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import type { StorageUpdate } from '../../src/storage/types.js';

/**
 * Memory storage on a slow disk: an update is visible at once (as DiskStorage keeps it in memory) and
 * durable `delayMs` later; counts saves.
 */
class SlowStorage extends MemoryStorage {
  delayMs = 0;
  saves = 0;
  inFlight = 0;
  override async save(update: StorageUpdate): Promise<void> {
    this.saves++;
    this.inFlight++;
    this.saveSync(update);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    this.inFlight--;
  }
}

/** Delivers messages between in-process hosts on the next turn of the event loop, recording them. */
class LoopTransport implements PeerTransport {
  readonly log: { at: number; m: Message }[] = [];
  constructor(private readonly hosts: Map<NodeId, RaftHost<ApplyResult>>) {}
  send(msgs: readonly Message[]): void {
    for (const m of msgs) {
      this.log.push({ at: Date.now(), m });
      setImmediate(() => this.hosts.get(m.to)?.receive(m));
    }
  }
  setFaults(): void {}
  stats(): unknown {
    return {};
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const put = (key: string, value: string) => encodeCommand({ op: 'put', key, value });

describe('RaftHost (in-process, three hosts)', () => {
  const ids = [1, 2, 3];
  const hosts = new Map<NodeId, RaftHost<ApplyResult>>();
  const storages = new Map<NodeId, SlowStorage>();
  const transports = new Map<NodeId, LoopTransport>();

  before(() => {
    for (const id of ids) {
      const storage = new SlowStorage(ids);
      const transport = new LoopTransport(hosts);
      const core = new RaftNode({ id, storage, peers: ids, electionTick: 10, heartbeatTick: 1, rng: makeRng(id) });
      storages.set(id, storage);
      transports.set(id, transport);
      hosts.set(
        id,
        new RaftHost<ApplyResult>({
          id,
          peers: ids,
          core,
          storage: hostStorageOf(storage),
          transport,
          sm: new KvStateMachine(),
          tickMs: 10,
          requestTimeoutMs: 2000,
          snapshotThreshold: 1000,
          snapshotTrailing: 10,
          applied: 0,
        }),
      );
    }
  });
  after(async () => {
    for (const h of hosts.values()) await h.close();
  });

  async function leader(): Promise<RaftHost<ApplyResult>> {
    for (let i = 0; i < 300; i++) {
      for (const h of hosts.values()) if (h.isLeader) return h;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('no leader');
  }

  test('concurrent proposals are batched: few propose calls and saves, answered in order once applied', async () => {
    const l = await leader();
    const before = { ...l.counters };
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => l.propose(put(`k${i % 10}`, `v${i}`))));
    assert.equal(results.length, 200);
    const revisions = results.map((r) => ('revision' in r ? r.revision : -1));
    assert.deepEqual(
      revisions,
      [...revisions].sort((a, b) => a - b),
    );
    assert.equal(new Set(revisions).size, 200);
    const batches = l.counters.proposeBatches - before.proposeBatches;
    const saves = l.counters.saves - before.saves;
    assert.ok(batches <= 5, `200 proposals took ${batches} propose calls`);
    assert.ok(saves <= 10, `200 proposals took ${saves} saves`);
    assert.ok(l.applied >= Math.max(...revisions));
  });

  test('a slow leader disk: the write is answered meanwhile, heartbeats keep flowing, nobody campaigns', async () => {
    const l = await leader();
    const id = [...hosts].find(([, h]) => h === l)?.[0] as NodeId;
    const storage = storages.get(id) as SlowStorage;
    const termBefore = l.status().term;
    storage.delayMs = 400;
    const t0 = Date.now();
    // The followers make the write a quorum on their own: it is answered while the leader's disk is busy.
    await l.propose(put('slow', 'disk'));
    assert.equal(storage.inFlight, 1, 'answered before the leader made it durable');
    assert.ok(Date.now() - t0 < 300, `answered after ${Date.now() - t0} ms`);
    while (storage.inFlight > 0) await new Promise((r) => setTimeout(r, 10));
    storage.delayMs = 0;
    const during = (transports.get(id) as LoopTransport).log.filter(
      (x) => x.at > t0 + 60 && x.at < t0 + 380 && x.m.type === 'heartbeat',
    );
    // Ticks of 10 ms: a heartbeat to each follower every tick while the save was pending.
    assert.ok(during.length >= 20, `only ${during.length} heartbeats during a 400 ms save`);
    assert.equal(l.status().term, termBefore);
    assert.ok(l.isLeader);
  });

  test('a follower refuses proposals and reads with not-leader; a barrier on the leader resolves', async () => {
    const l = await leader();
    const follower = [...hosts.values()].find((h) => h !== l) as RaftHost<ApplyResult>;
    await assert.rejects(follower.propose(put('x', 'y')), (e: unknown) => {
      assert.ok(e instanceof HostError);
      assert.equal(e.failure.kind, 'not-leader');
      return true;
    });
    await assert.rejects(follower.readBarrier(), HostError);
    const idx = await l.readBarrier();
    assert.ok(idx >= l.applied - 1);
  });
});

describe('RaftHost ticks follow wall time', () => {
  test('after the event loop stood still, no lease is trusted until the ticks have caught up', async () => {
    const storage = new SlowStorage([1]);
    const core = new RaftNode({ id: 1, storage, peers: [1], electionTick: 10, heartbeatTick: 1, rng: makeRng(1) });
    const host = new RaftHost<ApplyResult>({
      id: 1,
      peers: [1],
      core,
      storage: hostStorageOf(storage),
      transport: new LoopTransport(new Map()),
      sm: new KvStateMachine(),
      tickMs: 10,
      requestTimeoutMs: 2000,
      snapshotThreshold: 1000,
      snapshotTrailing: 10,
      applied: 0,
    });
    try {
      for (let i = 0; i < 200 && !host.hasLease(); i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(host.hasLease(), true, 'a single-node leader holds its lease');
      // Stand still for 15 ticks, as a stopped process would (SIGSTOP, a long pause).
      const until = performance.now() + 150;
      while (performance.now() < until) {
        // busy: no timer runs
      }
      assert.equal(host.hasLease(), false, 'the tick count is stale: no lease');
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(host.hasLease(), true, 'ticks caught up');
    } finally {
      await host.close();
    }
  });
});
