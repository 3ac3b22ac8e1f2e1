/**
 * Backup and restore (`quorumkv snapshot save|restore|status`, GET /admin/snapshot) with real node processes:
 * a save under concurrent write load, restored into a fresh cluster on new data directories, holds every
 * write acknowledged before the save began, with its value; a damaged file is refused; with auth on, saving
 * needs root.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommanderError } from 'commander';
import { buildProgram, type CliIO } from '../../src/cli/program.js';
import { ChatClient } from '../../src/client/chat.js';
import { Client } from '../../src/client/client.js';
import type { JsonValue } from '../../src/client/types.js';
import { LocalCluster } from '../../src/server/local-cluster.js';
import { decodeBackup } from '../../src/storage/backup.js';

interface Run {
  out: string[];
  err: string[];
  code: number;
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const r: Run = { out: [], err: [], code: 0 };
  const io: CliIO = {
    out: (l) => r.out.push(l),
    err: (l) => r.err.push(l),
    env,
    exit: (c) => {
      r.code = c;
    },
  };
  try {
    await buildProgram(io, { throwOnExit: true }).parseAsync(['node', 'quorumkv', ...args]);
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    r.code = err.exitCode;
  }
  return r;
}

/** Every key and value of a cluster, paging through `/kvs?prefix=`. */
async function dump(client: Client): Promise<Map<string, JsonValue>> {
  const out = new Map<string, JsonValue>();
  let after: string | undefined;
  for (;;) {
    const page = await client.list('', 1000, after === undefined ? {} : { after });
    for (const it of page.items) out.set(it.key, it.value as JsonValue);
    const last = page.items[page.items.length - 1];
    if (!page.more || last === undefined) return out;
    after = last.key;
  }
}

describe('snapshot save and restore', () => {
  let dir: string;
  let source: LocalCluster | undefined;
  let restored: LocalCluster | undefined;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-backup-'));
  });
  after(async () => {
    await source?.stopAll();
    await restored?.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a save under write load restores every write acknowledged before it began', async () => {
    // A low snapshot threshold: the nodes also snapshot and compact their own logs during the run.
    source = await LocalCluster.start({ nodes: 3, dir: path.join(dir, 'src'), snapshotThreshold: 300 });
    const leader = await source.waitLeader();
    const endpoints = source.ids.map((id) => source?.url(id) as string);
    const client = new Client({ endpoints });

    // Acknowledged before anything else: keys overwritten a few times (the last value must survive).
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => client.put(`base/${i}`, { round, i })));
    }

    // Concurrent load: each worker writes its own keys one after the other, recording when each was acknowledged.
    const acked = new Map<string, { value: JsonValue; at: number }>();
    const attempted = new Set<string>();
    let stop = false;
    const workers = Array.from({ length: 8 }, async (_, w) => {
      const wc = new Client({ endpoints });
      for (let n = 0; !stop; n++) {
        const key = `w${w}/${String(n).padStart(6, '0')}`;
        const value = { w, n, pad: 'x'.repeat(n % 64) };
        attempted.add(key);
        try {
          await wc.put(key, value);
          acked.set(key, { value, at: performance.now() });
        } catch {
          return; // a write of unknown outcome ends this worker (its later keys are never attempted)
        }
      }
    });
    // Under way: at least 200 writes acknowledged (a loaded machine may need longer than an idle one).
    const loadDeadline = Date.now() + 30_000;
    while (acked.size < 200 && Date.now() < loadDeadline) await new Promise((r) => setTimeout(r, 50));

    // Ask a follower first: it redirects to the leader.
    const follower = source.ids.find((id) => id !== leader) as number;
    const file = path.join(dir, 'backup.snap');
    const saveStarted = performance.now();
    const save = await cli([
      'snapshot',
      'save',
      file,
      '-e',
      [source.url(follower), ...endpoints].join(','),
      '--cluster-secret-file',
      source.secretFile,
    ]);
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(workers);
    assert.equal(save.code, 0, save.err.join('\n'));
    assert.match(save.out.join('\n'), /^saved .*: kv snapshot at index \d+ \(term \d+\) from node \d/);

    const bytes = readFileSync(file);
    const backup = decodeBackup(bytes, file);
    assert.equal(backup.header.node_id, leader, 'taken on the leader');
    assert.deepEqual([...backup.header.peers], [1, 2, 3]);
    const ackedBefore = [...acked].filter(([, a]) => a.at < saveStarted);
    const ackedAfter = [...acked].filter(([, a]) => a.at >= saveStarted);
    assert.ok(ackedBefore.length >= 200, `load before the save: ${ackedBefore.length} writes`);
    const st = await cli(['snapshot', 'status', file]);
    assert.equal(st.code, 0, st.err.join('\n'));
    assert.match(st.out[0] as string, new RegExp(`index ${backup.header.index}\\b.*sha256 ${backup.sha256}`));

    // A damaged copy is refused, by status and by restore, and nothing is written.
    const bad = Buffer.from(bytes);
    const at = Math.floor(bad.length / 2);
    bad[at] = (bad[at] as number) ^ 0x40;
    const badFile = path.join(dir, 'damaged.snap');
    writeFileSync(badFile, bad);
    const badStatus = await cli(['snapshot', 'status', badFile]);
    assert.equal(badStatus.code, 1);
    assert.match(badStatus.err.join('\n'), /not a usable quorumkv snapshot: checksum mismatch/);
    const badRestore = await cli(['snapshot', 'restore', badFile, '--data-dir', path.join(dir, 'never')]);
    assert.equal(badRestore.code, 1);
    assert.match(badRestore.err.join('\n'), /checksum mismatch/);
    const truncated = path.join(dir, 'truncated.snap');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 10));
    assert.equal((await cli(['snapshot', 'restore', truncated, '--data', path.join(dir, 'never')])).code, 1);

    await source.stopAll();
    source = undefined;

    // Restore into new data directories, one per node as on separate hosts, and start a new cluster there.
    const rdir = path.join(dir, 'restored');
    for (const id of [1, 2, 3]) {
      const r = await cli(['snapshot', 'restore', file, '--data-dir', path.join(rdir, `n${id}`), '--ids', '1,2,3']);
      assert.equal(r.code, 0, r.err.join('\n'));
    }
    // A directory that holds data is never overwritten.
    const again = await cli(['snapshot', 'restore', file, '--data-dir', path.join(rdir, 'n1'), '--ids', '1,2,3']);
    assert.equal(again.code, 1);
    assert.match(again.err.join('\n'), /is not empty/);

    restored = await LocalCluster.start({ nodes: 3, dir: rdir });
    await restored.waitLeader();
    const rc = new Client({ endpoints: restored.ids.map((id) => restored?.url(id) as string) });
    const state = await dump(rc);

    for (let i = 0; i < 50; i++) assert.deepEqual(state.get(`base/${i}`), { round: 2, i });
    const missing = ackedBefore.filter(([k]) => !state.has(k)).map(([k]) => k);
    assert.deepEqual(missing, [], 'every write acknowledged before the save began is restored');
    for (const [k, a] of ackedBefore) assert.deepEqual(state.get(k), a.value, k);
    // Nothing that was never written; each worker's keys form a prefix of what it wrote (a consistent cut).
    for (const k of state.keys()) assert.ok(k.startsWith('base/') || attempted.has(k), `unexpected key ${k}`);
    for (let w = 0; w < 8; w++) {
      const ns = [...state.keys()]
        .filter((k) => k.startsWith(`w${w}/`))
        .map((k) => Number(k.slice(k.indexOf('/') + 1)))
        .sort((a, b) => a - b);
      ns.forEach((n, i) => assert.equal(n, i, `worker ${w}: restored keys are a prefix`));
    }
    const writesInState = state.size - 50;
    assert.ok(writesInState <= attempted.size);

    // A fresh term history over the same index space: new writes get revisions beyond the snapshot's index.
    const put = await rc.put('after-restore', true);
    const rev = put.revision ?? 0;
    assert.ok(rev > backup.header.index, `revision ${rev} > ${backup.header.index}`);
    const status = (await (await fetch(restored.url(1) + '/status')).json()) as { term: number };
    assert.ok(status.term >= 2 && status.term < 10, `term ${status.term}`);
    console.log(
      `backup: index ${backup.header.index}, ${bytes.length} bytes; ${ackedBefore.length} writes acknowledged ` +
        `before the save, ${ackedAfter.length} during/after it; restored ${writesInState} load keys`,
    );
  });

  test('the chat app: a save needs the cluster secret; the restored cluster has the accounts and messages', async () => {
    const c = await LocalCluster.start({ nodes: 3, dir: path.join(dir, 'chat'), app: 'chat' });
    let r: LocalCluster | undefined;
    try {
      await c.waitLeader();
      const e = c.ids.map((id) => c.url(id));
      const ann = new ChatClient({ endpoints: e });
      await ann.register('ann', 'correct horse battery');
      await ann.login('ann', 'correct horse battery');
      await ann.createRoom('general');
      await ann.joinRoom('general');
      for (let i = 0; i < 20; i++) await ann.post('general', `message ${i}`);
      const file = path.join(dir, 'chat.snap');
      // A chat node has no admin users: its backup route needs the peer credential even on loopback.
      const unsigned = await cli(['snapshot', 'save', file, '-e', e.join(',')]);
      assert.equal(unsigned.code, 1);
      assert.match(unsigned.err.join('\n'), /HTTP 401 Peer credential required.*--cluster-secret-file/);
      const saved = await cli(['snapshot', 'save', file, '-e', e.join(','), '--cluster-secret-file', c.secretFile]);
      assert.equal(saved.code, 0, saved.err.join('\n'));
      assert.match(saved.out[0] as string, /: chat snapshot at index/);
      ann.close();
      await c.stopAll();

      const rdir = path.join(dir, 'chat-restored');
      const restore = await cli(['snapshot', 'restore', file, '--data', rdir, '--nodes', '3']);
      assert.equal(restore.code, 0, restore.err.join('\n'));
      assert.match(restore.out.join('\n'), /quorumkv cluster --data .* --nodes 3 --app chat/);
      // LocalCluster names its data directories n<id>: move the cluster layout's node-<id> there.
      for (const id of [1, 2, 3]) renameSync(path.join(rdir, `node-${id}`), path.join(rdir, `n${id}`));
      r = await LocalCluster.start({ nodes: 3, dir: rdir, app: 'chat' });
      await r.waitLeader();
      const again = new ChatClient({ endpoints: r.ids.map((id) => r?.url(id) as string) });
      await again.login('ann', 'correct horse battery');
      const got = await again.messages('general');
      assert.deepEqual(
        got.messages.map((m) => m.text),
        Array.from({ length: 20 }, (_, i) => `message ${i}`),
      );
      const next = await again.post('general', 'after the restore');
      assert.equal(next.seq, (got.messages.at(-1)?.seq ?? 0) + 1);
      again.close();
    } finally {
      await c.stopAll();
      await r?.stopAll();
    }
  });

  test('with auth on, saving needs a root credential', async () => {
    const c = await LocalCluster.start({ nodes: 3, dir: path.join(dir, 'auth'), auth: true });
    try {
      await c.waitLeader();
      const e = c.ids.map((id) => c.url(id)).join(',');
      const file = path.join(dir, 'auth.snap');
      const anon = await cli(['snapshot', 'save', file, '-e', e]);
      assert.equal(anon.code, 1);
      assert.match(anon.err.join('\n'), /HTTP 401 Not authenticated.*root credential/);
      const root = await cli(['snapshot', 'save', file, '-e', e, '--user', `root:${c.rootPassword}`]);
      assert.equal(root.code, 0, root.err.join('\n'));
      const b = decodeBackup(readFileSync(file), file);
      assert.equal(b.header.app, 'kv');
    } finally {
      await c.stopAll();
    }
  });
});
