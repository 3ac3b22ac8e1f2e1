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
 *   --forward-to / FORWARD_TO           IP:PORT of a replica every client write is forwarded to (causal
 *                                       metadata preserved, answer relayed); default none: writes are local
 *   --cluster-secret-file / QKV_CLUSTER_SECRET_FILE the cluster secret every replica shares (docs/security.md)
 *   --insecure / QKV_INSECURE=1                    run without a secret although listening beyond loopback
 *   --tls-cert, --tls-key, --tls-ca / QKV_TLS_CERT, QKV_TLS_KEY, QKV_TLS_CA  serve HTTPS; peers over https
 * Test only: QKV_CAUSAL_SKIP_DEPS=1 together with NODE_ENV=test plants a bug (no dependency check).
 * Prints `causal replica listening on http://IP:PORT` once it serves; SIGTERM/SIGINT stop it.
 */
import { parseArgs } from 'node:util';
import { tlsFilesFrom } from '../../net/tls-config.js';
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
      'forward-to': { type: 'string' },
      'cluster-secret-file': { type: 'string' },
      insecure: { type: 'boolean' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-ca': { type: 'string' },
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
  const forwardTo = values['forward-to'] ?? (env.FORWARD_TO || undefined);
  const handle = await startCausalReplica({
    socketAddress,
    view,
    syncIntervalMs: num(values['sync-interval-ms'], env.QKV_CAUSAL_SYNC_MS, 'sync interval'),
    peerTimeoutMs: num(values['peer-timeout-ms'], env.QKV_CAUSAL_PEER_TIMEOUT_MS, 'peer timeout'),
    failThreshold: num(values['fail-threshold'], env.QKV_CAUSAL_FAIL_THRESHOLD, 'fail threshold'),
    dependencyWaitMs: num(values['dependency-wait-ms'], env.QKV_CAUSAL_DEP_WAIT_MS, 'dependency wait'),
    forwardTo,
    logger: values.verbose ?? false,
    unsafeSkipDependencyCheck: env.NODE_ENV === 'test' && env.QKV_CAUSAL_SKIP_DEPS === '1',
    clusterSecretFile: values['cluster-secret-file'] ?? (env.QKV_CLUSTER_SECRET_FILE || undefined),
    insecure: values.insecure === true || env.QKV_INSECURE === '1' || env.QKV_INSECURE === 'true',
    tls: tlsFilesFrom({
      cert: values['tls-cert'] ?? env.QKV_TLS_CERT,
      key: values['tls-key'] ?? env.QKV_TLS_KEY,
      ca: values['tls-ca'] ?? env.QKV_TLS_CA,
    }),
  });
  // One JSON line, as the other modes print it (spawners wait for it); it also reads as prose.
  const message = `causal replica listening on ${handle.url}`;
  process.stdout.write(`${JSON.stringify({ listening: handle.url, mode: 'causal', message })}\n`);
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
