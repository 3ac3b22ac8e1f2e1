#!/usr/bin/env node
/**
 * Runs one eventual-mode replica: `node dist/src/modes/eventual/main.js --id r1 --port 8100
 * --peers 127.0.0.1:8101,127.0.0.1:8102`. Prints `{"listening": url, ...}` on stdout once it serves.
 * See docs/eventual.md.
 */
import { ArgReader, CREDENTIAL_SPECS, announceAndHandleSignals, credentialArgs } from '../common/cli-args.js';
import { parseUrlList } from '../common/layout.js';
import { startEventualNode } from './index.js';

const specs = [
  { flag: 'id', env: 'NODE_ID', description: 'replica id, also the LWW tie-break (default replica-<port>)' },
  { flag: 'host', env: 'HOST', description: 'listen address (default 127.0.0.1)' },
  { flag: 'port', env: 'PORT', description: 'listen port (default 8100)' },
  { flag: 'peers', env: 'PEERS', description: 'comma-separated host:port of the other replicas' },
  { flag: 'anti-entropy-interval', env: 'ANTI_ENTROPY_INTERVAL_MS', description: 'anti-entropy period, ms (1000)' },
  { flag: 'peer-timeout', env: 'PEER_TIMEOUT_MS', description: 'one request to a peer, ms (1000)' },
  { flag: 'catch-up-timeout', env: 'CATCH_UP_TIMEOUT_MS', description: 'try to reach a peer on start, ms (3000)' },
  { flag: 'tombstone-ttl', env: 'TOMBSTONE_TTL_MS', description: 'tombstone retention, ms (86400000)' },
  { flag: 'buckets', env: 'DIGEST_BUCKETS', description: 'anti-entropy digest buckets (256)' },
  { flag: 'min-delay', env: 'MIN_DELAY', description: 'simulated push delay lower bound, ms (0)' },
  { flag: 'max-delay', env: 'MAX_DELAY', description: 'simulated push delay upper bound, ms (0)' },
  ...CREDENTIAL_SPECS,
];

async function main(): Promise<void> {
  const args = new ArgReader(specs, process.argv.slice(2));
  if (args.helpRequested) {
    process.stdout.write(args.usage('quorumkv eventual-mode replica'));
    return;
  }
  const node = await startEventualNode({
    id: args.string('id'),
    host: args.string('host'),
    port: args.number('port') ?? 8100,
    peers: parseUrlList(args.string('peers')),
    antiEntropyIntervalMs: args.number('anti-entropy-interval'),
    peerTimeoutMs: args.number('peer-timeout'),
    catchUpTimeoutMs: args.number('catch-up-timeout'),
    tombstoneTtlMs: args.number('tombstone-ttl'),
    buckets: args.number('buckets'),
    minDelay: args.number('min-delay'),
    maxDelay: args.number('max-delay'),
    ...credentialArgs(args),
  });
  announceAndHandleSignals({ listening: node.url, node_id: node.id, mode: 'eventual', role: 'replica' }, () =>
    node.close(),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`eventual node: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
