/** The verify workload moves on to fresh keys: every key's history stays bounded however long the run. */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { makeRng } from '../../src/raft/rng.js';
import { Workload } from '../../src/verify/workload.js';

test('each key gets at most opsPerKey operations; fresh keys take the place of used ones', async () => {
  // A stand-in node: every key is missing, every write succeeds.
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const found = req.method === 'PUT';
      res.writeHead(found ? 201 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(found ? { result: 'created' } : { error: 'Key does not exist' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const w = new Workload({
      urls: [url],
      clients: 4,
      keys: 2,
      opsPerKey: 10,
      rng: makeRng(3),
      timeoutMs: 1000,
      thinkMs: 0,
      origin: process.hrtime.bigint(),
    });
    w.start();
    // Until enough operations ran (a loaded machine may take a while); bounded.
    for (let i = 0; i < 200 && w.history.length <= 200; i++) await new Promise((r) => setTimeout(r, 25));
    await w.stop();
    const invokes = new Map<string, number>();
    for (const e of w.history) if (e.type === 'invoke') invokes.set(e.key, (invokes.get(e.key) ?? 0) + 1);
    assert.ok(w.history.length > 200, `${w.history.length} events`);
    assert.ok(w.usedKeys.length > 4, `${w.usedKeys.length} keys used`);
    for (const [key, n] of invokes) {
      assert.ok(w.usedKeys.includes(key), key);
      assert.ok(n <= 10, `${key}: ${n} operations`);
    }
  } finally {
    server.close();
  }
});
