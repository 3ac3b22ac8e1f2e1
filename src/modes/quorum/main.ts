#!/usr/bin/env node
/**
 * Runs one quorum-mode node: `node dist/src/modes/quorum/main.js --role leader --port 8000 --followers
 * 127.0.0.1:8001,127.0.0.1:8002` or `--role follower --port 8001 --leader 127.0.0.1:8000`.
 * Prints `{"listening": url, ...}` on stdout once it serves. See docs/quorum.md.
 */
import { ArgReader, CREDENTIAL_SPECS, announceAndHandleSignals, credentialArgs } from '../common/cli-args.js';
import { normalizeUrl, parseUrlList } from '../common/layout.js';
import { startQuorumNode } from './index.js';

const specs = [
  { flag: 'role', env: 'ROLE', description: 'leader | follower (default leader)' },
  { flag: 'id', env: 'NODE_ID', description: 'node id (default leader / follower-<port>)' },
  { flag: 'host', env: 'HOST', description: 'listen address (default 127.0.0.1)' },
  { flag: 'port', env: 'PORT', description: 'listen port (default 8000 leader, 0 follower = any)' },
  { flag: 'followers', env: 'FOLLOWERS', description: 'leader: comma-separated follower host:port list' },
  { flag: 'leader', env: 'LEADER', description: 'follower: the leader host:port' },
  { flag: 'write-quorum', env: 'WRITE_QUORUM', description: 'follower acks a write needs, 1..N (default N)' },
  { flag: 'min-delay', env: 'MIN_DELAY', description: 'simulated replication delay lower bound, ms (0.1)' },
  { flag: 'max-delay', env: 'MAX_DELAY', description: 'simulated replication delay upper bound, ms (1)' },
  { flag: 'write-timeout', env: 'WRITE_TIMEOUT_MS', description: 'wait for W acks before 503, ms (2000)' },
  { flag: 'replicate-timeout', env: 'REPLICATE_TIMEOUT_MS', description: 'one replication request, ms (1000)' },
  { flag: 'repair-interval', env: 'REPAIR_INTERVAL_MS', description: 're-send missed keys every, ms (300)' },
  ...CREDENTIAL_SPECS,
];

async function main(): Promise<void> {
  const args = new ArgReader(specs, process.argv.slice(2));
  if (args.helpRequested) {
    process.stdout.write(args.usage('quorumkv quorum-mode node'));
    return;
  }
  const role = args.string('role') ?? 'leader';
  if (role !== 'leader' && role !== 'follower') throw new Error(`--role must be leader or follower, got ${role}`);
  const leader = args.string('leader');
  const node = await startQuorumNode({
    role,
    id: args.string('id'),
    host: args.string('host'),
    port: args.number('port') ?? (role === 'leader' ? 8000 : 0),
    followers: parseUrlList(args.string('followers')),
    leaderUrl: leader === undefined ? undefined : normalizeUrl(leader),
    writeQuorum: args.number('write-quorum'),
    minDelay: args.number('min-delay'),
    maxDelay: args.number('max-delay'),
    writeTimeoutMs: args.number('write-timeout'),
    replicateTimeoutMs: args.number('replicate-timeout'),
    repairIntervalMs: args.number('repair-interval'),
    ...credentialArgs(args),
  });
  announceAndHandleSignals({ listening: node.url, node_id: node.id, mode: 'quorum', role }, () => node.close());
}

main().catch((err: unknown) => {
  process.stderr.write(`quorum node: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
