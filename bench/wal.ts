/**
 * WAL benchmark: `npm run bench:wal [-- --entries 200000 --size 128 --rate 150000 --dir data/bench-wal]`.
 *
 * 1. group commit: a steady open-loop stream of proposals (`rate` entries/s) until `entries` entries
 *    are durable, saved once per event-loop turn (as the server saves once per Raft Ready), then again
 *    with one save per entry; reports entries/s, fsyncs/s, MB/s and the due-to-durable latency. If the
 *    log cannot keep up, the achieved rate falls below the offered one and the latency grows.
 * 2. floor vs single writer, interleaved (alternating which goes first) so both see the same disk
 *    conditions: a bare `write + fdatasync` of one entry-sized record, and one single-entry `save`
 *    awaited on its own.
 */
import { constants } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DiskStorage } from '../src/storage/disk.js';
import type { Entry } from '../src/raft/types.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: 'data/bench-wal' },
    entries: { type: 'string', default: '200000' },
    size: { type: 'string', default: '128' },
    rate: { type: 'string', default: '150000' },
    'single-ops': { type: 'string', default: '1000' },
  },
});
const dir = resolve(values.dir);
const total = Number(values.entries);
const size = Number(values.size);
const rate = Number(values.rate);
const singleOps = Number(values['single-ops']);

function pct(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(lat: Float64Array): string {
  lat.sort();
  return `p50 ${pct(lat, 50).toFixed(3)} ms, p99 ${pct(lat, 99).toFixed(3)} ms`;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/**
 * Offers `total` entries at `rate` entries/s (open loop). On each turn of the event loop the entries that
 * have fallen due (at most `maxPerTick`) are saved: as one save, like the server does once per Raft
 * Ready (`perEntry` false), or as one save each. Latency runs from the moment an entry fell due to the
 * moment its save resolved, so a log that falls behind shows it.
 */
async function stream(name: string, perEntry: boolean, maxPerTick: number): Promise<void> {
  const storage = await DiskStorage.open(join(dir, name), [1, 2, 3]);
  const data = new Uint8Array(size).fill(7);
  const lat = new Float64Array(total);
  const start = storage.stats();
  let issued = 0;
  let durable = 0;
  let lastDone = 0;
  let saves = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const dueAt = (i: number) => t0 + ((i + 1) * 1000) / rate;
  const done = (from: number, to: number) => () => {
    lastDone = performance.now();
    for (let i = from; i < to; i++) lat[i] = lastDone - dueAt(i);
    durable += to - from;
  };
  while (issued < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate), issued + maxPerTick);
    if (perEntry) {
      for (; issued < due; issued++) {
        saves++;
        const e: Entry = { index: issued + 1, term: 1, type: 'normal', data };
        void storage.save({ entries: [e] }).then(done(issued, issued + 1));
      }
    } else if (due > issued) {
      const entries: Entry[] = [];
      for (let i = issued; i < due; i++) entries.push({ index: i + 1, term: 1, type: 'normal', data });
      saves++;
      void storage.save({ entries }).then(done(issued, due));
      issued = due;
    }
    await tick();
  }
  while (durable < total) await tick();
  const secs = (lastDone - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const st = storage.stats();
  const fsyncs = st.fsyncs - start.fsyncs;
  const mb = (st.bytesWritten - start.bytesWritten) / 1e6;
  console.log(
    `${name}: ${total} entries of ${size} B offered at ${rate}/s in ${saves} saves: ` +
      `${(total / secs).toFixed(0)} entries/s durable, ${(fsyncs / secs).toFixed(0)} fsyncs/s, ` +
      `${(mb / secs).toFixed(1)} MB/s, ${(total / (st.batches - start.batches)).toFixed(1)} entries/fsync, ` +
      `due-to-durable ${summary(lat)}, CPU ${((cpu.user + cpu.system) / total).toFixed(2)} us/entry`,
  );
  await storage.close();
}

async function floorAndSingle(): Promise<void> {
  const fh = await open(join(dir, 'floor.bin'), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC);
  const storage = await DiskStorage.open(join(dir, 'single'), [1, 2, 3]);
  const rec = Buffer.alloc(size + 33, 0xab); // the same bytes as one entry record with its framing
  const data = new Uint8Array(size).fill(7);
  const floorLat = new Float64Array(singleOps);
  const saveLat = new Float64Array(singleOps);
  const start = storage.stats();
  const bare = async (i: number) => {
    const s = performance.now();
    await fh.write(rec, 0, rec.length, i * rec.length);
    await fh.datasync();
    floorLat[i] = performance.now() - s;
  };
  const save = async (i: number) => {
    const s = performance.now();
    await storage.save({ entries: [{ index: i + 1, term: 1, type: 'normal', data }] });
    saveLat[i] = performance.now() - s;
  };
  for (let i = 0; i < singleOps; i++) {
    // Alternate which goes first, so that neither always follows the other's fsync.
    if (i % 2 === 0) {
      await bare(i);
      await save(i);
    } else {
      await save(i);
      await bare(i);
    }
  }
  const floorSecs = floorLat.reduce((a, b) => a + b, 0) / 1000;
  console.log(
    `floor: bare write + fdatasync of ${rec.length} B: ${(singleOps / floorSecs).toFixed(0)} fsyncs/s, ${summary(floorLat)}`,
  );
  console.log(
    `single writer: ${singleOps} awaited single-entry saves (${storage.stats().fsyncs - start.fsyncs} fsyncs): ${summary(saveLat)}`,
  );
  console.log(`single-writer p50 / floor p50 = ${(pct(saveLat, 50) / pct(floorLat, 50)).toFixed(2)}`);
  await fh.close();
  await storage.close();
}

await rm(dir, { recursive: true, force: true });
await mkdir(dir, { recursive: true });
try {
  await stream('group commit, one save per event-loop turn (per Raft Ready)', false, 4096);
  await stream('group commit, one save per entry', true, 2000);
  await floorAndSingle();
} finally {
  await rm(dir, { recursive: true, force: true });
}
