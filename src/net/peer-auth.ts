/**
 * Peer credentials: the shared cluster secret that every node-to-node path of every mode requires (see
 * docs/security.md, "Peer credentials").
 *
 * - The secret file holds one or more secrets, 32 random bytes each, written as 64 hex digits, one per line
 *   (`#` comments and blank lines ignored). The first line is the *signing* secret; every line is accepted
 *   when verifying, so a cluster rotates its secret by rolling restarts without downtime.
 * - Internal HTTP requests carry four headers: `x-qkv-peer` (the sender's id), `x-qkv-ts` (the sender's
 *   clock, ms), `x-qkv-nonce` (`<incarnation>.<counter>`: 16 random hex digits fixed for the sender's process
 *   lifetime, then a per-process counter) and `x-qkv-signature`, the hex HMAC-SHA256 of
 *   `qkv-http-v1 \n METHOD \n path+query \n peer \n ts \n nonce \n hex sha256(body)`.
 * - A receiver refuses a timestamp more than `windowMs` (30 s) from its own clock or from before its own
 *   start (its replay memory is not persisted), and a nonce it has seen:
 *   it keeps, per sender incarnation, the highest counter and a bitmap of the last 4096 counters below it
 *   (requests may arrive out of order), so memory stays bounded whatever the request rate.
 * - Every comparison of MACs is constant-time.
 *
 * The TCP handshake of the Raft transport uses the same keys (see handshake.ts).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';

export const SECRET_BYTES = 32;
/** Secrets a file may list (the signing one plus those still accepted). */
export const MAX_SECRETS = 4;
export const MAC_BYTES = 32;
/** Largest difference between a signed request's timestamp and the receiver's clock. */
export const SIGNATURE_WINDOW_MS = 30_000;

export const PEER_HEADER = 'x-qkv-peer';
export const TS_HEADER = 'x-qkv-ts';
export const NONCE_HEADER = 'x-qkv-nonce';
export const SIGNATURE_HEADER = 'x-qkv-signature';
export const PEER_AUTH_HEADERS = [PEER_HEADER, TS_HEADER, NONCE_HEADER, SIGNATURE_HEADER] as const;

/** sha256 of an empty body, hex. */
export const EMPTY_BODY_HASH = createHash('sha256').digest('hex');

export class PeerAuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerAuthError';
  }
}

/** The cluster's secrets: the first signs, all verify. */
export class PeerKeys {
  private constructor(private readonly secrets: readonly Buffer[]) {}

  static fromBuffers(secrets: readonly Uint8Array[]): PeerKeys {
    if (secrets.length === 0) throw new PeerAuthError('no cluster secret given');
    if (secrets.length > MAX_SECRETS)
      throw new PeerAuthError(`at most ${MAX_SECRETS} cluster secrets, got ${secrets.length}`);
    for (const s of secrets) {
      if (s.length !== SECRET_BYTES)
        throw new PeerAuthError(`a cluster secret has ${SECRET_BYTES} bytes, got ${s.length}`);
    }
    return new PeerKeys(secrets.map((s) => Buffer.from(s)));
  }

  /** Parses the text of a secret file; `where` names it in errors. */
  static parse(text: string, where: string): PeerKeys {
    const secrets: Buffer[] = [];
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      if (!/^[0-9a-fA-F]{64}$/.test(line)) {
        throw new PeerAuthError(`${where}:${i + 1}: expected ${SECRET_BYTES * 2} hex digits (a cluster secret)`);
      }
      secrets.push(Buffer.from(line, 'hex'));
    });
    if (secrets.length === 0) throw new PeerAuthError(`${where}: no cluster secret in the file`);
    if (secrets.length > MAX_SECRETS) throw new PeerAuthError(`${where}: at most ${MAX_SECRETS} secrets`);
    return new PeerKeys(secrets);
  }

  get count(): number {
    return this.secrets.length;
  }

  /** HMAC-SHA256 of `data` with secret `index` (0, the signing secret, by default). */
  mac(data: Buffer | string, index = 0): Buffer {
    const key = this.secrets[index];
    if (key === undefined) throw new RangeError(`no secret ${index}`);
    return createHmac('sha256', key).update(data).digest();
  }

  /** The index of the secret whose MAC of `data` is `mac`, or -1. Each comparison is constant-time. */
  match(data: Buffer | string, mac: Uint8Array): number {
    if (mac.length !== MAC_BYTES) return -1;
    for (let i = 0; i < this.secrets.length; i++) if (timingSafeEqual(this.mac(data, i), mac)) return i;
    return -1;
  }

  /** Short fingerprints (sha256 prefixes) of the secrets, for logs: never the secrets themselves. */
  fingerprints(): string[] {
    return this.secrets.map((s) => createHash('sha256').update(s).digest('hex').slice(0, 8));
  }
}

// ---- secret files ----

export function generateSecretHex(): string {
  return randomBytes(SECRET_BYTES).toString('hex');
}

/** Writes a new secret file (mode 0600) holding `lines`; fails if it exists when `exclusive`. */
function writeSecretFile(file: string, lines: readonly string[], exclusive: boolean): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600, flag: exclusive ? 'wx' : 'w' });
}

/** Creates `file` with one fresh secret unless it exists; returns the absolute path. Local clusters use it. */
export function ensureSecretFile(file: string): string {
  const abs = path.resolve(file);
  try {
    writeSecretFile(abs, [generateSecretHex()], true);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return abs;
}

/** Creates a new secret file; throws if it already exists. */
export function createSecretFile(file: string): string {
  const abs = path.resolve(file);
  writeSecretFile(abs, [generateSecretHex()], true);
  return abs;
}

function secretLines(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  PeerKeys.parse(text, file); // validates
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * Rotation, step by step (each step followed by a rolling restart of every node, see docs/security.md):
 * `add` appends a new secret (accepted, not yet signing); `promote` makes the last secret the signing one;
 * `retire` keeps only the signing secret.
 */
export function rotateSecretFile(file: string, step: 'add' | 'promote' | 'retire'): string[] {
  const lines = secretLines(file);
  let next: string[];
  if (step === 'add') {
    if (lines.length >= MAX_SECRETS) throw new PeerAuthError(`${file} already holds ${MAX_SECRETS} secrets`);
    next = [...lines, generateSecretHex()];
  } else if (step === 'promote') {
    if (lines.length < 2) throw new PeerAuthError(`${file} holds one secret: add one first`);
    next = [lines[lines.length - 1] as string, ...lines.slice(0, -1)];
  } else {
    next = lines.slice(0, 1);
  }
  writeSecretFile(file, next, false);
  return PeerKeys.parse(next.join('\n'), file).fingerprints();
}

/** Reads a secret file. `warnings`: a file readable by group or others. */
export function loadSecretFile(file: string): { keys: PeerKeys; warnings: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PeerAuthError(`cannot read the cluster secret file ${file}: ${(err as Error).message}`);
  }
  const keys = PeerKeys.parse(text, file);
  const warnings: string[] = [];
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    warnings.push(`cluster secret file ${file} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
  }
  return { keys, warnings };
}

// ---- which nodes may run without a secret ----

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  return /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export interface PeerKeyChoice {
  /** The cluster secret file, if configured. */
  readonly secretFile?: string;
  /** Run without peer authentication even when listening beyond loopback. */
  readonly insecure?: boolean;
  /** Every address this node listens on. */
  readonly listenHosts: readonly string[];
}

/**
 * The keys a node starts with: those of its secret file; none (insecure) when it has no secret file and
 * either listens on loopback only or was started with `insecure`. A node listening beyond loopback with
 * neither refuses to start: it cannot invent a secret its peers share. Throws PeerAuthError.
 */
export function resolvePeerKeys(c: PeerKeyChoice): { keys: PeerKeys | undefined; warnings: string[] } {
  if (c.secretFile !== undefined && c.secretFile !== '') return loadSecretFile(c.secretFile);
  const exposed = c.listenHosts.filter((h) => !isLoopbackHost(h));
  if (exposed.length === 0) {
    return {
      keys: undefined,
      warnings: ['no cluster secret configured: peer requests are not authenticated (loopback only)'],
    };
  }
  if (c.insecure === true) {
    return {
      keys: undefined,
      warnings: [
        `INSECURE: listening on ${exposed.join(', ')} without a cluster secret: anyone who reaches this node ` +
          'can inject replication traffic and use /admin',
      ],
    };
  }
  throw new PeerAuthError(
    `this node listens on ${exposed.join(', ')} (not loopback) but has no cluster secret: pass ` +
      '--cluster-secret-file <file> (or QKV_CLUSTER_SECRET_FILE, or "clusterSecretFile" in the config file; ' +
      '`quorumkv secret create <file>` makes one, every node needs the same file), or --insecure to run ' +
      'without peer authentication',
  );
}

// ---- signed HTTP requests ----

function sha256Hex(body: string | Uint8Array | undefined): string {
  if (body === undefined || body.length === 0) return EMPTY_BODY_HASH;
  return createHash('sha256').update(body).digest('hex');
}

function canonical(method: string, pathAndQuery: string, peer: string, ts: string, nonce: string, bodyHash: string) {
  return `qkv-http-v1\n${method.toUpperCase()}\n${pathAndQuery}\n${peer}\n${ts}\n${nonce}\n${bodyHash}`;
}

/** Signs a node's outgoing internal requests. */
export class RequestSigner {
  private readonly incarnation = randomBytes(8).toString('hex');
  private counter = 0;

  constructor(
    private readonly keys: PeerKeys,
    readonly peerId: string,
    private readonly now: () => number = Date.now,
  ) {
    if (!/^[\x21-\x7e]{1,256}$/.test(peerId)) throw new PeerAuthError(`peer id ${JSON.stringify(peerId)} cannot sign`);
  }

  /** The four headers for one request; `body` exactly as sent (undefined or empty: no body). */
  sign(method: string, pathAndQuery: string, body?: string | Uint8Array): Record<string, string> {
    const ts = String(Math.floor(this.now()));
    const nonce = `${this.incarnation}.${++this.counter}`;
    const mac = this.keys.mac(canonical(method, pathAndQuery, this.peerId, ts, nonce, sha256Hex(body)));
    return {
      [PEER_HEADER]: this.peerId,
      [TS_HEADER]: ts,
      [NONCE_HEADER]: nonce,
      [SIGNATURE_HEADER]: mac.toString('hex'),
    };
  }
}

export type RefusalReason = 'missing' | 'malformed' | 'stale' | 'bad-signature' | 'replayed';

export type Verdict =
  | { readonly ok: true; readonly peer: string }
  | { readonly ok: false; readonly status: 401 | 403; readonly reason: RefusalReason };

const REPLAY_BITS = 4096;

/** Counters seen from one sender incarnation: the highest and a ring bitmap of the REPLAY_BITS below it. */
interface ReplayState {
  highest: number;
  readonly seen: Uint8Array;
  lastUsed: number;
}

/** Remembers the nonces (`<incarnation>.<counter>`) accepted within the time window, in bounded memory. */
export class ReplayGuard {
  private readonly states = new Map<string, ReplayState>();

  constructor(
    private readonly windowMs: number,
    private readonly maxIncarnations = 1024,
  ) {}

  get size(): number {
    return this.states.size;
  }

  /** Records the nonce; false if it was seen before (or is too far behind to tell). */
  accept(incarnation: string, counter: number, now: number): boolean {
    let st = this.states.get(incarnation);
    if (st === undefined) {
      this.makeRoom(now);
      st = { highest: 0, seen: new Uint8Array(REPLAY_BITS / 8), lastUsed: now };
    } else {
      this.states.delete(incarnation); // re-inserted below: the map's order is least recently used first
    }
    this.states.set(incarnation, st);
    st.lastUsed = now;
    if (counter > st.highest) {
      if (counter - st.highest >= REPLAY_BITS) st.seen.fill(0);
      else for (let c = st.highest + 1; c < counter; c++) clearBit(st.seen, c);
      st.highest = counter;
      setBit(st.seen, counter);
      return true;
    }
    if (counter <= st.highest - REPLAY_BITS) return false;
    if (getBit(st.seen, counter)) return false;
    setBit(st.seen, counter);
    return true;
  }

  /**
   * Drops incarnations idle for two windows (their requests are all stale by now, so forgetting them opens no
   * replay); at the cap, the least recently used goes anyway.
   */
  private makeRoom(now: number): void {
    for (const [k, st] of this.states) {
      if (now - st.lastUsed <= 2 * this.windowMs) break;
      this.states.delete(k);
    }
    if (this.states.size >= this.maxIncarnations) {
      const oldest = this.states.keys().next();
      if (oldest.done !== true) this.states.delete(oldest.value);
    }
  }
}

const bitAt = (c: number) => c % REPLAY_BITS;
function setBit(b: Uint8Array, c: number): void {
  const i = bitAt(c);
  b[i >> 3] = (b[i >> 3] as number) | (1 << (i & 7));
}
function clearBit(b: Uint8Array, c: number): void {
  const i = bitAt(c);
  b[i >> 3] = (b[i >> 3] as number) & ~(1 << (i & 7));
}
function getBit(b: Uint8Array, c: number): boolean {
  const i = bitAt(c);
  return ((b[i >> 3] as number) & (1 << (i & 7))) !== 0;
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** True if the request carries any of the peer credential headers. */
export function presentsCredential(h: IncomingHttpHeaders): boolean {
  return PEER_AUTH_HEADERS.some((n) => h[n] !== undefined);
}

const NONCE_RE = /^([0-9a-f]{16})\.([1-9][0-9]{0,14})$/;

/**
 * A verifier refuses requests signed more than this before it was created: its replay memory starts empty,
 * so a request captured shortly before a node restarted must not be accepted by the new process.
 */
export const STARTUP_SLACK_MS = 2_000;

/** Checks signed internal requests: headers first (no body needed), then the MAC and the nonce. */
export class RequestVerifier {
  private readonly replay: ReplayGuard;
  private readonly notBefore: number;

  constructor(
    private readonly keys: PeerKeys,
    private readonly windowMs = SIGNATURE_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.replay = new ReplayGuard(windowMs);
    this.notBefore = now() - STARTUP_SLACK_MS;
  }

  /** Verdict on the headers alone: missing, malformed or stale credentials are refused before the body is read. */
  precheck(h: IncomingHttpHeaders): Verdict {
    const sig = header(h, SIGNATURE_HEADER);
    if (sig === undefined) return { ok: false, status: 401, reason: 'missing' };
    const peer = header(h, PEER_HEADER);
    const ts = header(h, TS_HEADER);
    const nonce = header(h, NONCE_HEADER);
    if (peer === undefined || ts === undefined || nonce === undefined || !/^[0-9a-f]{64}$/.test(sig)) {
      return { ok: false, status: 403, reason: 'malformed' };
    }
    if (!/^\d{1,16}$/.test(ts) || !NONCE_RE.test(nonce) || !/^[\x21-\x7e]{1,256}$/.test(peer)) {
      return { ok: false, status: 403, reason: 'malformed' };
    }
    const t = Number(ts);
    if (Math.abs(this.now() - t) > this.windowMs || t < this.notBefore) {
      return { ok: false, status: 403, reason: 'stale' };
    }
    return { ok: true, peer };
  }

  /** The whole check; `bodyHash` is the hex sha256 of the body bytes as received. */
  verify(method: string, pathAndQuery: string, h: IncomingHttpHeaders, bodyHash: string): Verdict {
    const pre = this.precheck(h);
    if (!pre.ok) return pre;
    const ts = header(h, TS_HEADER) as string;
    const nonce = header(h, NONCE_HEADER) as string;
    const mac = Buffer.from(header(h, SIGNATURE_HEADER) as string, 'hex');
    if (this.keys.match(canonical(method, pathAndQuery, pre.peer, ts, nonce, bodyHash), mac) < 0) {
      return { ok: false, status: 403, reason: 'bad-signature' };
    }
    // Only a request with a valid MAC consumes its nonce (nobody else can burn a peer's nonces).
    const m = NONCE_RE.exec(nonce) as RegExpExecArray;
    if (!this.replay.accept(m[1] as string, Number(m[2]), this.now())) {
      return { ok: false, status: 403, reason: 'replayed' };
    }
    return pre;
  }
}

// ---- refusals: counted, logged once per source ----

export interface RefusalSample {
  readonly channel: string;
  readonly reason: string;
  readonly count: number;
}

/** Counts refused credentials by channel and reason; logs the first refusal of each source (bounded). */
export class RefusalLog {
  private readonly counts = new Map<string, RefusalSample>();
  private readonly logged = new Set<string>();
  private saturated = false;

  constructor(
    private readonly warn: (msg: string) => void,
    private readonly maxSources = 1024,
  ) {}

  record(channel: string, reason: string, source: string, detail: string): void {
    const k = `${channel}\0${reason}`;
    const c = this.counts.get(k);
    this.counts.set(k, { channel, reason, count: (c?.count ?? 0) + 1 });
    if (this.logged.has(source)) return;
    if (this.logged.size >= this.maxSources) {
      if (!this.saturated) {
        this.saturated = true;
        this.warn(`peer auth: refusals from more than ${this.maxSources} sources; not logging new sources`);
      }
      return;
    }
    this.logged.add(source);
    this.warn(
      `peer auth: refused ${channel} from ${source}: ${reason} (${detail}); further refusals from it are counted only`,
    );
  }

  snapshot(): RefusalSample[] {
    return [...this.counts.values()];
  }

  total(): number {
    let n = 0;
    for (const s of this.counts.values()) n += s.count;
    return n;
  }
}

// ---- one node's credentials ----

export interface PeerAuthOptions {
  /** This node's id as it signs (node id, replica address...). */
  readonly id: string;
  /** The cluster keys; undefined: no authentication (see resolvePeerKeys). */
  readonly keys: PeerKeys | undefined;
  /** Where refusals are logged (default: stderr). */
  readonly warn?: (msg: string) => void;
  /** `/admin/*` needs a credential (the node listens beyond loopback). */
  readonly adminNeedsCredential?: boolean;
  readonly windowMs?: number;
  readonly now?: () => number;
}

const stderrWarn = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

/** A node's peer credentials: signs what it sends, verifies what it receives, counts and logs refusals. */
export class PeerAuth {
  readonly keys: PeerKeys | undefined;
  private signer: RequestSigner | undefined;
  readonly verifier: RequestVerifier | undefined;
  readonly refusals: RefusalLog;
  readonly adminNeedsCredential: boolean;
  private readonly now: (() => number) | undefined;

  constructor(o: PeerAuthOptions) {
    this.keys = o.keys;
    this.now = o.now;
    this.signer = o.keys === undefined ? undefined : new RequestSigner(o.keys, o.id, o.now);
    this.verifier = o.keys === undefined ? undefined : new RequestVerifier(o.keys, o.windowMs, o.now);
    this.refusals = new RefusalLog(o.warn ?? stderrWarn);
    this.adminNeedsCredential = o.keys !== undefined && o.adminNeedsCredential === true;
  }

  /** No secret: nothing is signed and nothing verified. */
  static insecure(id: string): PeerAuth {
    return new PeerAuth({ id, keys: undefined });
  }

  get secure(): boolean {
    return this.keys !== undefined;
  }

  /** Renames the signer (a node whose id is known only once it listens). */
  setId(id: string): void {
    if (this.keys !== undefined) this.signer = new RequestSigner(this.keys, id, this.now);
  }

  /** Headers that authenticate one request (none without a secret). */
  signHeaders(method: string, pathAndQuery: string, body?: string | Uint8Array): Record<string, string> {
    return this.signer === undefined ? {} : this.signer.sign(method, pathAndQuery, body);
  }
}

/** A signer's view of PeerAuth, for clients that only send. */
export type SignHeaders = (method: string, pathAndQuery: string, body?: string | Uint8Array) => Record<string, string>;

/** `path?query` of a URL, as the receiving server sees it in its request line. */
export function pathAndQueryOf(url: string): string {
  const u = new URL(url);
  return u.pathname + u.search;
}
