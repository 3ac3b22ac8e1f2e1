import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DiskStorage } from '../../src/storage/disk.js';
import { FaultyFileSystem } from '../../src/storage/faulty-fs.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { PEERS, Workload, applyToModel, fingerprint, rng, type Op } from './helpers.js';

const DIR = '/data/node1';

async function run(storage: DiskStorage, op: Op): Promise<void> {
  if (op.kind === 'save') await storage.save(op);
  else if (op.kind === 'createSnapshot') await storage.createSnapshot(op.index, PEERS, op.data);
  else await storage.compact(op.index);
}

/** Steps: how many ops to run next (issued concurrently when > 1), or a restart (clean or crash). */
const step = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('ops' as const), n: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), crash: fc.boolean() }) },
);

test('DiskStorage agrees with MemoryStorage over random append/truncate/snapshot/compact/restart', async () => {
  let segmentsDeleted = 0;
  let restarts = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer(),
      fc.integer({ min: 300, max: 3000 }),
      fc.array(step, { minLength: 5, maxLength: 40 }),
      async (seed, segmentBytes, steps) => {
        let fs = new FaultyFileSystem();
        const notes: string[] = [];
        const open = () => DiskStorage.open(DIR, PEERS, { fs, segmentBytes, log: (m) => notes.push(m) });
        const model = new MemoryStorage(PEERS);
        const gen = new Workload(model, rng(seed));
        let disk = await open();
        for (const s of steps) {
          if (s.kind === 'restart') {
            restarts++;
            if (s.crash) fs = fs.crash();
            else await disk.close();
            disk = await open();
          } else {
            const pending: Promise<void>[] = [];
            for (let i = 0; i < s.n; i++) {
              const op = gen.next();
              applyToModel(model, op);
              pending.push(run(disk, op));
            }
            await Promise.all(pending);
          }
          assert.equal(fingerprint(disk), fingerprint(model));
        }
        segmentsDeleted += disk.stats().segmentsDeleted;
        await disk.close();
        disk = await open();
        assert.equal(fingerprint(disk), fingerprint(model));
        // Every acknowledged operation was durable, so a clean history needs no recovery repairs. (An
        // instance left running on a crashed file system may report its zero-filling stopped.)
        assert.deepEqual(
          notes.filter((n) => !n.startsWith('snapshot: removed old') && !n.startsWith('wal: preallocation stopped')),
          [],
        );
        await disk.close();
      },
    ),
    { numRuns: 120 },
  );
  assert.ok(restarts > 0, 'restarts were exercised');
  assert.ok(segmentsDeleted > 0, 'compaction deleted segments in some runs');
});
