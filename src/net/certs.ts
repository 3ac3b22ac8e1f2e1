/**
 * X.509 certificates for TLS (see docs/security.md): a cluster CA, node certificates (server and client
 * authentication: a node serves HTTPS and dials its peers with it) and client certificates (client
 * authentication only; the common name is the user name).
 *
 * Certificates are built by @peculiar/x509 on Node's WebCrypto (ECDSA P-256, SHA-256); nothing here encodes
 * ASN.1 by hand. Keys are written as PKCS#8 PEM with mode 0600, certificates as PEM with mode 0644.
 *
 * File layout of a certificate directory:
 * - `ca.pem`, `ca-key.pem`: the CA (the key stays with whoever issues certificates);
 * - `<name>.pem`, `<name>-key.pem`: a node's or a client's certificate and key (plus a copy of `ca.pem`,
 *   so that the directory is all a node or a client needs).
 */
import { X509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';

type X509Module = typeof import('@peculiar/x509');

let x509Module: Promise<X509Module> | undefined;

/**
 * The X.509 library, loaded on first use: it needs a Reflect metadata polyfill (its dependency injection
 * container), which is installed only in the processes that issue certificates — never in a serving node.
 */
function loadX509(): Promise<X509Module> {
  x509Module ??= (async () => {
    await import('reflect-metadata');
    const mod = await import('@peculiar/x509');
    mod.cryptoProvider.set(webcrypto);
    return mod;
  })();
  return x509Module;
}

export const CA_CERT_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca-key.pem';
export const DEFAULT_CA_DAYS = 3650;
export const DEFAULT_CERT_DAYS = 365;
/** Certificates start to be valid a little in the past, for machines whose clocks are slightly behind. */
const BACKDATE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;

/** Object identifiers of the extended key usages. */
export const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A certificate and its private key, both PEM. */
export interface CertKeyPair {
  readonly cert: string;
  readonly key: string;
}

/** Certificate names (common names, file names): letters, digits and `_ . @ -`, 1 to 64 of them. */
export const CERT_NAME_PATTERN = /^[A-Za-z0-9_.@-]{1,64}$/;

export function checkCertName(name: string, what = 'name'): string {
  if (!CERT_NAME_PATTERN.test(name) || name.startsWith('.')) {
    throw new Error(`${what}: expected 1 to 64 of A-Z a-z 0-9 _ . @ - (not starting with "."), got "${name}"`);
  }
  return name;
}

function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f; // positive
  return b.toString('hex');
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(days) || days <= 0) throw new Error(`validity: expected a positive number of days, got ${days}`);
  const now = Date.now();
  return { notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + days * DAY_MS) };
}

function toPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

async function newKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function exportKey(key: webcrypto.CryptoKey): Promise<string> {
  return toPem(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** The signing algorithm and WebCrypto key of a CA private key (ECDSA or RSA, as PEM). */
async function importSigningKey(
  pem: string,
): Promise<{ key: webcrypto.CryptoKey; algorithm: webcrypto.EcdsaParams | webcrypto.Algorithm }> {
  const ko = createPrivateKey(pem);
  const der = ko.export({ type: 'pkcs8', format: 'der' });
  if (ko.asymmetricKeyType === 'ec') {
    const curve = ko.asymmetricKeyDetails?.namedCurve;
    const named =
      curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : curve === 'secp521r1' ? 'P-521' : '';
    if (named === '') throw new Error(`CA key: unsupported elliptic curve ${curve ?? '?'}`);
    const algorithm = { name: 'ECDSA', namedCurve: named, hash: named === 'P-256' ? 'SHA-256' : 'SHA-384' };
    return { key: await webcrypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign']), algorithm };
  }
  if (ko.asymmetricKeyType === 'rsa') {
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { key: await webcrypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign']), algorithm };
  }
  throw new Error(`CA key: unsupported key type ${ko.asymmetricKeyType ?? '?'} (ECDSA or RSA expected)`);
}

export interface CaOptions {
  /** The CA's common name (default "quorumkv CA"). */
  readonly commonName?: string;
  /** Validity in days (default 3650). */
  readonly days?: number;
}

/** A new certificate authority: a key and its self-signed certificate (may sign end-entity certificates only). */
export async function createCa(o: CaOptions = {}): Promise<CertKeyPair> {
  const x509 = await loadX509();
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ CN: [o.commonName ?? 'quorumkv CA'] }],
    ...validity(o.days ?? DEFAULT_CA_DAYS),
    keys,
    signingAlgorithm: EC_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: await exportKey(keys.privateKey) };
}

export interface IssueOptions {
  /** The subject's common name: a node's name, or a user name for a client certificate. */
  readonly name: string;
  /** Validity in days (default 365). */
  readonly days?: number;
}

export interface NodeCertOptions extends IssueOptions {
  /**
   * Host names and IP addresses the node is reached at (subject alternative names), besides 127.0.0.1, ::1
   * and localhost, which every node certificate carries.
   */
  readonly hosts?: readonly string[];
}

/** The subject alternative names of a node certificate: loopback plus `hosts`, without duplicates. */
export function nodeAltNames(hosts: readonly string[] = []): { type: 'dns' | 'ip'; value: string }[] {
  const seen = new Set<string>();
  const out: { type: 'dns' | 'ip'; value: string }[] = [];
  for (const raw of ['127.0.0.1', '::1', 'localhost', ...hosts]) {
    const h = raw.trim().replace(/^\[|\]$/g, '');
    if (h === '') continue;
    const type = isIP(h) === 0 ? 'dns' : 'ip';
    if (type === 'dns' && !/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(h)) {
      throw new Error(`host: "${raw}" is neither an IP address nor a DNS name`);
    }
    const k = `${type}:${h.toLowerCase()}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ type, value: h });
  }
  return out;
}

async function issue(
  ca: CertKeyPair,
  o: IssueOptions,
  usages: readonly string[],
  altNames: { type: 'dns' | 'ip'; value: string }[] | undefined,
): Promise<CertKeyPair> {
  checkCertName(o.name);
  const x509 = await loadX509();
  const caCert = new x509.X509Certificate(ca.cert);
  const signer = await importSigningKey(ca.key);
  if (!new X509Certificate(ca.cert).checkPrivateKey(createPrivateKey(ca.key))) {
    throw new Error('the CA key does not belong to the CA certificate');
  }
  const keys = await newKeyPair();
  const extensions: InstanceType<X509Module['Extension']>[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([...usages], false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
  ];
  if (altNames !== undefined) extensions.push(new x509.SubjectAlternativeNameExtension(altNames, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: [{ CN: [o.name] }],
    issuer: caCert.subjectName,
    ...validity(o.days ?? DEFAULT_CERT_DAYS),
    publicKey: keys.publicKey,
    signingKey: signer.key,
    signingAlgorithm: signer.algorithm,
    extensions,
  });
  return { cert: cert.toString('pem') + '\n', key: await exportKey(keys.privateKey) };
}

/**
 * A node certificate: server authentication (its HTTPS API, its peer transport) and client authentication
 * (its connections to peers), valid for loopback and `hosts`.
 */
export async function issueNodeCert(ca: CertKeyPair, o: NodeCertOptions): Promise<CertKeyPair> {
  return issue(ca, o, [EKU_SERVER_AUTH, EKU_CLIENT_AUTH], nodeAltNames(o.hosts));
}

/** A client certificate for user `name` (client authentication only: it cannot serve, nor act as a node). */
export async function issueClientCert(ca: CertKeyPair, o: IssueOptions): Promise<CertKeyPair> {
  return issue(ca, o, [EKU_CLIENT_AUTH], undefined);
}

// ---- files ----

function writePrivate(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

function writePublic(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o644 });
}

/** Paths of a certificate and its key in `dir`: `<name>.pem` and `<name>-key.pem`. */
export function certFiles(dir: string, name: string): { cert: string; key: string } {
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}-key.pem`) };
}

/** Paths of the CA certificate and key in `dir`. */
export function caFiles(dir: string): { cert: string; key: string } {
  return { cert: path.join(dir, CA_CERT_FILE), key: path.join(dir, CA_KEY_FILE) };
}

function refuseOverwrite(files: readonly string[], force: boolean): void {
  if (force) return;
  const present = files.filter((f) => existsSync(f));
  if (present.length > 0) throw new Error(`${present.join(' and ')} already exist(s); --force replaces it`);
}

/** Writes a pair as `<dir>/<name>.pem` and `<dir>/<name>-key.pem` (mode 0600). */
export function writePair(dir: string, name: string, pair: CertKeyPair, force = false): { cert: string; key: string } {
  const files = name === 'ca' ? caFiles(dir) : certFiles(dir, name);
  refuseOverwrite([files.cert, files.key], force);
  mkdirSync(dir, { recursive: true });
  writePrivate(files.key, pair.key);
  writePublic(files.cert, pair.cert);
  return files;
}

/** Reads the CA of a certificate directory (its certificate and key). */
export function readCa(dir: string): CertKeyPair {
  const f = caFiles(dir);
  for (const file of [f.cert, f.key]) {
    if (!existsSync(file))
      throw new Error(`${file} does not exist (create a CA with \`quorumkv certs ca --out ${dir}\`)`);
  }
  return { cert: readFileSync(f.cert, 'utf8'), key: readFileSync(f.key, 'utf8') };
}

/** Copies the CA certificate (never its key) into `dir`, unless it is the CA's own directory. */
export function copyCaCert(caDir: string, dir: string): string {
  const from = caFiles(caDir).cert;
  const to = path.join(dir, CA_CERT_FILE);
  if (path.resolve(from) !== path.resolve(to)) {
    mkdirSync(dir, { recursive: true });
    copyFileSync(from, to);
    chmodSync(to, 0o644);
  }
  return to;
}

/** The TLS files of a local cluster: its CA and one certificate per node. */
export interface ClusterTlsFiles {
  readonly ca: string;
  readonly caKey: string;
  /** Node id → its certificate and key. */
  readonly nodes: ReadonlyMap<number, { cert: string; key: string }>;
}

/** Whether a certificate file still has at least `days` of validity and names every host in `hosts`. */
function stillGood(certFile: string, hosts: readonly string[], caCert: string): boolean {
  try {
    const c = new X509Certificate(readFileSync(certFile));
    if (!c.verify(new X509Certificate(caCert).publicKey)) return false;
    if (Date.parse(c.validTo) - Date.now() < 7 * DAY_MS) return false;
    return hosts.every((h) => (isIP(h) === 0 ? c.checkHost(h) !== undefined : c.checkIP(h) !== undefined));
  } catch {
    return false;
  }
}

/**
 * Development certificates of a local cluster in `dir`: the CA (`ca.pem`, `ca-key.pem`) and
 * `node-<id>.pem` / `node-<id>-key.pem` for each id, valid for `hosts`. Files already there are reused
 * while they are valid (signed by the CA, not about to expire, naming the hosts); others are (re)issued.
 */
export async function ensureClusterCerts(
  dir: string,
  ids: readonly number[],
  hosts: readonly string[] = [],
): Promise<ClusterTlsFiles> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caPaths = caFiles(dir);
  let ca: CertKeyPair;
  if (existsSync(caPaths.cert) && existsSync(caPaths.key)) ca = readCa(dir);
  else {
    ca = await createCa({ commonName: 'quorumkv development CA' });
    writePair(dir, 'ca', ca, true);
  }
  const nodes = new Map<number, { cert: string; key: string }>();
  for (const id of ids) {
    const name = `node-${id}`;
    const files = certFiles(dir, name);
    if (!existsSync(files.key) || !stillGood(files.cert, hosts, ca.cert)) {
      writePair(dir, name, await issueNodeCert(ca, { name, hosts }), true);
    }
    nodes.set(id, files);
  }
  return { ca: caPaths.cert, caKey: caPaths.key, nodes };
}
