/**
 * Runnable causal replica: `node dist/src/modes/causal/main.js [--socket-address IP:PORT] [--view A,B,C]`.
 *
 * Configuration (flags win over the environment):
 *   --socket-address / SOCKET_ADDRESS   IP:PORT of this replica; it listens there (required)
 *   --view / VIEW                       comma-separated IP:PORT of all replicas (default: just this one)
 *   --sync-interval-ms / QKV_CAUSAL_SYNC_MS        peer loop period (health + anti-entropy), default 1000
 *   --peer-timeout-ms / QKV_CAUSAL_PEER_TIMEOUT_MS internal request timeout, default 500
 *   --fail-threshold / QKV_CAUSAL_FAIL_THRESHOLD   failed exchanges before a peer leaves the view, default 3
 *   --dependency-wait-ms / QKV_CAUSAL_DEP_WAIT_MS  wait for missing dependencies before a 503, default 500
 * Test only: QKV_CAUSAL_SKIP_DEPS=1 together with NODE_ENV=test plants a bug (no dependency check).
 * Prints `causal replica listening on http://IP:PORT` once it serves; SIGTERM/SIGINT stop it.
 */
import { parseArgs } from 'node:util';
import { startCausalReplica } from './index.js';

function num(flag: string | undefined, env: string | undefined, name: string): number | undefined {
  const raw = flag ?? env;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'socket-address': { type: 'string' },
      view: { type: 'string' },
      'sync-interval-ms': { type: 'string' },
      'peer-timeout-ms': { type: 'string' },
      'fail-threshold': { type: 'string' },
      'dependency-wait-ms': { type: 'string' },
      verbose: { type: 'boolean' },
    },
  });
  const env = process.env;
  const socketAddress = values['socket-address'] ?? env.SOCKET_ADDRESS;
  if (socketAddress === undefined || socketAddress === '') {
    throw new Error('SOCKET_ADDRESS (or --socket-address) is required, e.g. 127.0.0.1:8090');
  }
  const viewRaw = values.view ?? env.VIEW ?? socketAddress;
  const view = viewRaw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const handle = await startCausalReplica({
    socketAddress,
    view,
    syncIntervalMs: num(values['sync-interval-ms'], env.QKV_CAUSAL_SYNC_MS, 'sync interval'),
    peerTimeoutMs: num(values['peer-timeout-ms'], env.QKV_CAUSAL_PEER_TIMEOUT_MS, 'peer timeout'),
    failThreshold: num(values['fail-threshold'], env.QKV_CAUSAL_FAIL_THRESHOLD, 'fail threshold'),
    dependencyWaitMs: num(values['dependency-wait-ms'], env.QKV_CAUSAL_DEP_WAIT_MS, 'dependency wait'),
    logger: values.verbose ?? false,
    unsafeSkipDependencyCheck: env.NODE_ENV === 'test' && env.QKV_CAUSAL_SKIP_DEPS === '1',
  });
  process.stdout.write(`causal replica listening on ${handle.url}\n`);
  const stop = (): void => {
    void handle.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`causal replica: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
