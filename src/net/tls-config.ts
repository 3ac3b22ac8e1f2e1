/**
 * TLS settings shared by every mode (docs/security.md, "TLS and certificates"): a node's certificate, key and
 * cluster CA as files, loaded and checked once at start; the HTTPS server options of its client API; the
 * client side of its internal HTTPS calls (forwarding, replication), which trust the cluster CA and present
 * the node's certificate.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type https from 'node:https';
import path from 'node:path';
import { DEFAULT_CIPHERS, type ConnectionOptions } from 'node:tls';
import { Agent } from 'undici';
import { isLoopbackHost } from './peer-auth.js';

/** A node's TLS files. */
export interface TlsFiles {
  /** The node's certificate (PEM; may be followed by intermediate certificates). */
  readonly cert: string;
  /** Its private key (PEM). */
  readonly key: string;
  /**
   * The cluster CA (PEM). With it the node verifies the nodes it calls, asks clients for certificates (not
   * required: a verified one identifies its user) and, on the peer transport, requires one from its peers.
   */
  readonly ca?: string;
}

/** The contents of a node's TLS files. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca?: Buffer;
  readonly files: TlsFiles;
}

export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsConfigError';
  }
}

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsConfigError(`cannot read the ${what} ${file}: ${(err as Error).message}`);
  }
}

/** Reads and checks a node's TLS files: the key matches the certificate, which is current (and signed by the CA). */
export function loadTls(files: TlsFiles): TlsMaterial {
  const cert = read(files.cert, 'TLS certificate');
  const key = read(files.key, 'TLS key');
  const ca = files.ca === undefined ? undefined : read(files.ca, 'TLS CA certificate');
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert);
  } catch (err) {
    throw new TlsConfigError(`${files.cert} is not a PEM certificate: ${(err as Error).message}`);
  }
  try {
    if (!x.checkPrivateKey(createPrivateKey(key))) {
      throw new TlsConfigError(`the key ${files.key} does not belong to the certificate ${files.cert}`);
    }
  } catch (err) {
    if (err instanceof TlsConfigError) throw err;
    throw new TlsConfigError(`${files.key} is not a PEM private key: ${(err as Error).message}`);
  }
  const now = Date.now();
  if (Date.parse(x.validTo) < now) throw new TlsConfigError(`the certificate ${files.cert} expired on ${x.validTo}`);
  if (Date.parse(x.validFrom) > now) {
    throw new TlsConfigError(`the certificate ${files.cert} is not valid before ${x.validFrom}`);
  }
  if (ca !== undefined && files.ca !== undefined) {
    // The CA file may hold several certificates (during a CA rotation): one of them must have signed ours.
    const pems = ca.toString('utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    let cas: X509Certificate[];
    try {
      cas = pems.map((p) => new X509Certificate(p));
    } catch (err) {
      throw new TlsConfigError(`${files.ca} holds a certificate that does not parse: ${(err as Error).message}`);
    }
    if (cas.length === 0) throw new TlsConfigError(`${files.ca} holds no PEM certificate`);
    if (!cas.some((c) => x.checkIssued(c) && x.verify(c.publicKey))) {
      throw new TlsConfigError(`the certificate ${files.cert} is not signed by the CA ${files.ca}`);
    }
  }
  return { cert, key, ...(ca === undefined ? {} : { ca }), files };
}

/** TLS files from flags, environment or a config file; `base` resolves relative paths. Undefined: no TLS. */
export function tlsFilesFrom(
  o: { cert?: string; key?: string; ca?: string },
  base = '.',
  what = 'TLS',
): TlsFiles | undefined {
  const given = (v: string | undefined) => (v === undefined || v === '' ? undefined : path.resolve(base, v));
  const cert = given(o.cert);
  const key = given(o.key);
  const ca = given(o.ca);
  if (cert === undefined && key === undefined) {
    if (ca !== undefined)
      throw new TlsConfigError(`${what}: a CA without a certificate and key (--tls-cert, --tls-key)`);
    return undefined;
  }
  if (cert === undefined || key === undefined) {
    throw new TlsConfigError(
      `${what}: --tls-cert and --tls-key go together (got only ${cert === undefined ? 'the key' : 'the certificate'})`,
    );
  }
  return { cert, key, ...(ca === undefined ? {} : { ca }) };
}

/**
 * Node's default cipher list with AES-128-GCM first (TLS 1.3 and 1.2): as strong for this use and the
 * cheapest on processors with AES instructions; the server's order wins.
 */
export const PREFERRED_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  ...DEFAULT_CIPHERS.split(':').filter((c) => c !== 'TLS_AES_128_GCM_SHA256' && c !== 'ECDHE-ECDSA-AES128-GCM-SHA256'),
].join(':');

/**
 * The HTTPS options of a node's client API. With a CA it asks clients for a certificate without requiring
 * one (`req.socket.authorized` tells whether the one given is signed by the CA).
 */
export function httpsServerOptions(m: TlsMaterial): https.ServerOptions {
  return {
    cert: m.cert,
    key: m.key,
    minVersion: 'TLSv1.2',
    ciphers: PREFERRED_CIPHERS,
    honorCipherOrder: true,
    ...(m.ca === undefined ? {} : { ca: m.ca, requestCert: true, rejectUnauthorized: false }),
  };
}

/**
 * How a node calls other nodes over TLS: it trusts the cluster CA (else the system's CAs) and presents its own
 * certificate.
 */
export function clientTlsOptions(m: TlsMaterial): ConnectionOptions {
  return { cert: m.cert, key: m.key, minVersion: 'TLSv1.2', ...(m.ca === undefined ? {} : { ca: m.ca }) };
}

export interface ExposureCheck {
  /** Addresses the node's client API (and, in quorum/eventual/causal, its internal routes) listens on. */
  readonly httpHosts: readonly string[];
  /** Addresses of its raft peer transport (none in the other modes). */
  readonly peerHosts?: readonly string[];
  readonly tls: TlsFiles | undefined;
  /** Whether the node has a cluster secret (the peer credential of internal requests). */
  readonly hasSecret: boolean;
  /** Start anyway (a warning is returned instead). */
  readonly insecure?: boolean;
}

/**
 * The non-loopback rule: a node reachable from other machines must encrypt what crosses the network — TLS on
 * its HTTP API (a certificate and key) and, for a raft peer transport beyond loopback, mutual TLS (the
 * cluster CA too) — and authenticate its peers (a cluster secret). Missing any of these it refuses to start
 * (throws TlsConfigError saying what is missing and why), unless `insecure`: then the warnings are returned.
 */
export function checkExposure(c: ExposureCheck): string[] {
  const httpExposed = c.httpHosts.filter((h) => !isLoopbackHost(h));
  const peerExposed = (c.peerHosts ?? []).filter((h) => !isLoopbackHost(h));
  const exposed = [...new Set([...httpExposed, ...peerExposed])];
  if (exposed.length === 0) return [];
  const missing: string[] = [];
  if (httpExposed.length > 0 && c.tls === undefined) {
    missing.push(
      'TLS on its HTTP API (--tls-cert and --tls-key): without it requests, values and credentials cross the ' +
        'network in clear text',
    );
  }
  if (peerExposed.length > 0 && c.tls?.ca === undefined) {
    missing.push(
      'mutual TLS between nodes (--tls-cert, --tls-key and --tls-ca): without it the replication traffic ' +
        'crosses the network in clear text',
    );
  }
  if (!c.hasSecret) {
    missing.push(
      'a peer credential (--cluster-secret-file): without it anyone who reaches the node can inject ' +
        'replication traffic',
    );
  }
  if (missing.length === 0) return [];
  const where = `this node listens on ${exposed.join(', ')} (not loopback)`;
  if (c.insecure === true) return [`INSECURE: ${where} without ${missing.map((m) => m.split(' (')[0]).join(' and ')}`];
  throw new TlsConfigError(
    `refusing to start: ${where} without ${missing.join('; and without ')}. ` +
      '`quorumkv certs` makes certificates and `quorumkv secret create` a secret (docs/security.md); ' +
      'or pass --insecure to run like this anyway (a trusted network only)',
  );
}

/** The scheme of a node's URLs. */
export function schemeOf(tls: TlsFiles | TlsMaterial | undefined): 'http' | 'https' {
  return tls === undefined ? 'http' : 'https';
}

/** TLS options of a client of the HTTP API (CLI, Client, ChatClient). */
export interface ClientTls {
  /** CA certificate(s) to trust instead of the system's, PEM. */
  readonly ca?: string | Buffer;
  /** A client certificate (PEM) and its key, for servers that identify users by certificate. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

/** Whether a client was given any TLS option. */
export function hasClientTls(o: ClientTls): boolean {
  return o.ca !== undefined || o.cert !== undefined || o.key !== undefined;
}

/** An undici dispatcher (keep-alive agent) that connects with these TLS options. */
export function tlsAgent(o: ClientTls, agentOptions: Agent.Options = {}): Agent {
  if ((o.cert === undefined) !== (o.key === undefined)) {
    throw new TypeError('a client certificate needs its key (and the key its certificate)');
  }
  return new Agent({
    ...agentOptions,
    connect: {
      ...(o.ca === undefined ? {} : { ca: o.ca }),
      ...(o.cert === undefined ? {} : { cert: o.cert }),
      ...(o.key === undefined ? {} : { key: o.key }),
    },
  });
}
