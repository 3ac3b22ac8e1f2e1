import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { runCheck } from '../../src/cli/check.js';

const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'results', 'verify');

function capture() {
  const out: string[] = [];
  return { out, io: { out: (l: string) => out.push(l), err: (l: string) => out.push(l), exit: () => undefined } };
}

const line = (o: Record<string, unknown>) => JSON.stringify(o);
const STALE_READ = [
  line({ process: 1, type: 'invoke', f: 'put', key: 'a', value: 1, time: 0 }),
  line({ process: 1, type: 'ok', f: 'put', key: 'a', value: 1, time: 1 }),
  line({ process: 1, type: 'invoke', f: 'put', key: 'a', value: 2, time: 2 }),
  line({ process: 1, type: 'ok', f: 'put', key: 'a', value: 2, time: 3 }),
  line({ process: 2, type: 'invoke', f: 'get', key: 'a', time: 4 }),
  line({ process: 2, type: 'ok', f: 'get', key: 'a', value: 1, time: 5 }),
].join('\n');

test('quorumkv check: exit codes 0, 1, 2 and 3, gzip accepted, the failing key and its operations printed', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-check-'));
  try {
    const recorded = path.join(RESULTS, 'seed300-k16-prefix.jsonl.gz');
    let c = capture();
    assert.equal(runCheck(recorded, 10, 1024, c.io), 0);
    assert.match(c.out[0] as string, /^LINEARIZABLE: 2790 operations on 1 key/);

    const bad = path.join(dir, 'bad.jsonl.gz');
    writeFileSync(bad, gzipSync(STALE_READ + '\n' + line({ process: 3, type: 'invoke', f: 'get', key: 'b', time: 0 })));
    c = capture();
    assert.equal(runCheck(bad, 10, 1024, c.io), 1);
    assert.match(c.out[0] as string, /^NOT LINEARIZABLE: .* the smallest is "a"/);
    assert.ok(
      c.out.some((l) => l.includes('get → 1 (ok) [4, 5]')),
      c.out.join('\n'),
    );
    assert.ok(
      c.out.some((l) => l.includes('put 2 (ok) [2, 3]')),
      'the operations around it',
    );

    for (const text of ['not json', line({ process: 1, type: 'nope', f: 'get', key: 'a', time: 0 })]) {
      const f = path.join(dir, 'malformed.jsonl');
      writeFileSync(f, text);
      c = capture();
      assert.equal(runCheck(f, 10, 1024, c.io), 2, text);
      assert.match(c.out[0] as string, /is not a valid history: line 1/);
    }
    c = capture();
    assert.equal(runCheck(path.join(dir, 'missing.jsonl'), 10, 1024, c.io), 2);

    c = capture();
    assert.equal(runCheck(recorded, 10, 0.01, c.io), 3, 'a memory limit too small to decide');
    assert.match(c.out[0] as string, /^UNKNOWN: .* memory limit: k16/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
