/**
 * TLS of a quorum, eventual or causal node (docs/security.md, "TLS and certificates"): with a certificate
 * and key it serves HTTPS, client API and internal routes alike; its calls to peers go over https, trusting
 * the cluster CA and presenting its own certificate.
 */
import type https from 'node:https';
import type { Dispatcher } from 'undici';
import { clientTlsOptions, httpsServerOptions, loadTls, tlsAgent, type TlsFiles } from '../../net/tls-config.js';

export interface PeerTls {
  /** The scheme of this node's and its peers' URLs. */
  readonly scheme: 'http' | 'https';
  /** The HTTPS server options (undefined: plain HTTP). */
  readonly server: https.ServerOptions | undefined;
  /** The agent of calls to peers (undefined: the default one). */
  readonly dispatcher: Dispatcher | undefined;
}

const PLAIN: PeerTls = { scheme: 'http', server: undefined, dispatcher: undefined };

/** Loads and checks the TLS files (throws TlsConfigError naming the bad file); none: plain HTTP. */
export function openPeerTls(files: TlsFiles | undefined): PeerTls {
  if (files === undefined) return PLAIN;
  const m = loadTls(files);
  const c = clientTlsOptions(m);
  return {
    scheme: 'https',
    server: httpsServerOptions(m),
    dispatcher: tlsAgent(
      { cert: c.cert as Buffer, key: c.key as Buffer, ...(m.ca === undefined ? {} : { ca: m.ca }) },
      { keepAliveTimeout: 30_000, connections: 64 },
    ),
  };
}

/** `url` with `scheme` (a URL given as host:port or with the other scheme gets this node's scheme). */
export function withScheme(url: string, scheme: 'http' | 'https'): string {
  return url.replace(/^(https?:\/\/)?/, `${scheme}://`);
}
