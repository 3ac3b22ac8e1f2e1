import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommanderError } from 'commander';
import { buildProgram, type CliIO } from '../../src/cli/program.js';

async function cli(args: string[]): Promise<{ out: string[]; err: string[]; code: number }> {
  const r = { out: [] as string[], err: [] as string[], code: 0 };
  const io: CliIO = { out: (l) => r.out.push(l), err: (l) => r.err.push(l), env: {}, exit: (c) => (r.code = c) };
  try {
    await buildProgram(io, { throwOnExit: true }).parseAsync(['node', 'quorumkv', ...args]);
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    r.code = err.exitCode;
  }
  return r;
}

test('quorumkv bench --spawn drives a local eventual cluster and prints JSON', { timeout: 60_000 }, async () => {
  const r = await cli(['bench', '--mode', 'eventual', '--spawn', '-d', '0.6', '-c', '4', '--keys', '10', '--json']);
  assert.equal(r.code, 0, r.err.join('\n'));
  const res = JSON.parse(r.out.join('\n')) as {
    mode: string;
    ops: number;
    nodes: number;
    put: { p50Ms: number; p99Ms: number };
    staleness: { fraction: number };
  };
  assert.equal(res.mode, 'eventual');
  assert.equal(res.nodes, 3);
  assert.ok(res.ops > 0);
  assert.ok(res.put.p99Ms >= res.put.p50Ms && res.put.p50Ms > 0);
  assert.ok(res.staleness.fraction >= 0 && res.staleness.fraction <= 1);
});

test('quorumkv bench open loop against a spawned quorum cluster prints a summary', { timeout: 60_000 }, async () => {
  const r = await cli([
    'bench',
    '--mode',
    'quorum',
    '--spawn',
    '--size',
    '2',
    '--write-quorum',
    '2',
    '-r',
    '100',
    '-d',
    '0.6',
  ]);
  assert.equal(r.code, 0, r.err.join('\n'));
  assert.match(r.out[0], /mode quorum, open loop, 100\/s/);
  assert.match(r.out.join('\n'), /stale reads 0\//); // W = every follower: no acknowledged write is missed
});

test('quorumkv bench rejects bad flags with exit code 2', async () => {
  for (const args of [['--clients', '0'], ['--put-ratio', '2'], ['--duration', 'x'], []]) {
    const r = await cli(['bench', '--mode', 'raft', ...args]);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err.join('\n'), /error: /);
  }
});
