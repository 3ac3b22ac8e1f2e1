/**
 * Peer credentials of a quorum, eventual or causal node (see src/net/peer-auth.ts and docs/security.md):
 * the cluster secret from `clusterSecretFile` (flag `--cluster-secret-file`, env QKV_CLUSTER_SECRET_FILE),
 * or none on a loopback-only node or with `insecure`; a node listening beyond loopback without either
 * refuses to start.
 */
import { PeerAuth, isLoopbackHost, resolvePeerKeys } from '../../net/peer-auth.js';
import { checkExposure, type TlsFiles } from '../../net/tls-config.js';

export interface CredentialOptions {
  /** The cluster secret file every node of the cluster shares. */
  readonly clusterSecretFile?: string;
  /** Run without a secret although listening beyond loopback. */
  readonly insecure?: boolean;
  /** TLS: serve HTTPS and call peers over https (see peer-tls.ts). */
  readonly tls?: TlsFiles;
}

const stderrWarn = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

/** Resolves the node's keys (throws PeerAuthError when it may not start) and logs the warnings. */
export function openPeerAuth(
  id: string,
  listenHost: string,
  o: CredentialOptions,
  warn: (msg: string) => void = stderrWarn,
): PeerAuth {
  // Beyond loopback: TLS and a cluster secret, or insecure (throws TlsConfigError saying why).
  const exposure = checkExposure({
    httpHosts: [listenHost],
    tls: o.tls,
    hasSecret: o.clusterSecretFile !== undefined && o.clusterSecretFile !== '',
    insecure: o.insecure,
  });
  for (const w of exposure) warn(`${id}: ${w}`);
  const { keys, warnings } = resolvePeerKeys({
    secretFile: o.clusterSecretFile,
    insecure: o.insecure,
    listenHosts: [listenHost],
  });
  for (const w of warnings) warn(`${id}: ${w}`);
  return new PeerAuth({ id, keys, warn, adminNeedsCredential: !isLoopbackHost(listenHost) });
}
