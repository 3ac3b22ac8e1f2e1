/**
 * The ceiling for the cluster benchmark: a bare Fastify server answering the same `/kvs/<key>` routes from
 * an in-memory Map (no replication, no durability). Run as a child process by bench/cluster.ts:
 * `node dist/bench/cluster-bare.js <port>`; prints `{"event":"listening","url":..}`.
 */
import { checkKey, checkPutBody, createHttpServer, DEFAULT_LIMITS } from '../src/server/http-common.js';

interface Rec {
  value: unknown;
  version: number;
  revision: number;
}

async function main(): Promise<void> {
  const port = Number(process.argv[2] ?? 0);
  const app = createHttpServer({ logger: { level: 'warn' } });
  const data = new Map<string, Rec>();
  let revision = 0;
  app.put<{ Params: { '*': string } }>('/kvs/*', (req, reply) => {
    const key = checkKey(req.params['*'], DEFAULT_LIMITS);
    const body = checkPutBody(req.body, DEFAULT_LIMITS);
    const prev = data.get(key);
    const rec = { value: body.value, version: (prev?.version ?? 0) + 1, revision: ++revision };
    data.set(key, rec);
    return reply
      .code(prev ? 200 : 201)
      .send({ result: prev ? 'replaced' : 'created', revision: rec.revision, version: rec.version, leader: 1 });
  });
  app.get<{ Params: { '*': string } }>('/kvs/*', (req, reply) => {
    const key = checkKey(req.params['*'], DEFAULT_LIMITS);
    const rec = data.get(key);
    if (!rec) return reply.code(404).send({ error: 'Key does not exist', leader: 1 });
    return reply.send({ result: 'found', value: rec.value, revision: rec.revision, version: rec.version, leader: 1 });
  });
  await app.listen({ host: '127.0.0.1', port });
  const addr = app.server.address();
  const actual = typeof addr === 'object' && addr !== null ? addr.port : port;
  process.stdout.write(JSON.stringify({ event: 'listening', url: `http://127.0.0.1:${actual}` }) + '\n');
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

void main();
