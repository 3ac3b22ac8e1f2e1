/**
 * The fuzzer (src/fuzz, docs/security.md "Fuzzing") as a bounded test: against a live cluster of each mode
 * (raft, the chat app, quorum, eventual, causal), QKV_FUZZ_COUNT malformed HTTP requests and as many
 * malformed peer frames (raft, chat) or internal requests (the others) — 3,000 of each by default, about a
 * minute for the five modes on the 2-core machine; `npm run fuzz` runs 10,000 of each per mode. The seed is
 * random unless QKV_FUZZ_SEED is set, and every failure prints the command that replays it.
 *
 * Each mode must end with no 5xx, no invalid request accepted, no handler reached without a required
 * credential, no hang, every invalid frame refused, every node alive and healthy, every node's state as
 * before, and each node's memory within the tolerance of its baseline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomSeed } from '../../src/fuzz/rng.js';
import { MODES, reproduceCommand, runMode, summarize } from '../../src/fuzz/runner.js';

const SEED = process.env.QKV_FUZZ_SEED === undefined ? randomSeed() : Number(process.env.QKV_FUZZ_SEED);
const COUNT = Number(process.env.QKV_FUZZ_COUNT ?? 3000);

for (const mode of MODES) {
  test(`fuzz ${mode}: ${COUNT} malformed HTTP requests and ${COUNT} malformed peer messages (seed ${SEED})`, async (t) => {
    const failures: string[] = [];
    const r = await runMode({
      mode,
      seed: SEED,
      count: COUNT,
      frames: COUNT,
      log: (line) => {
        if (line.startsWith('FAIL')) failures.push(line);
      },
    });
    for (const line of summarize(r).split('\n')) t.diagnostic(line);
    assert.ok(
      r.ok,
      `${summarize(r)}\n${failures.slice(0, 10).join('\n')}\nreplay the run: ${reproduceCommand(mode, SEED)} --count ${COUNT}`,
    );
  });
}
