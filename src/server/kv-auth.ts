/**
 * Authentication of key-value requests when auth is on (see src/kv/auth.ts for users and roles, and
 * docs/security.md, "Users, roles and permissions").
 *
 * A request names its user by, in this order:
 * - `Authorization: Basic base64(name:password)`: checked with scrypt, then remembered for `cacheTtlMs`
 *   under the SHA-256 of the header (never the password itself), as long as the user's credential revision
 *   is unchanged — so a password change, or a deletion, voids it at once;
 * - `Authorization: Bearer <token>`: a token from `POST /auth/authenticate`; the replicated state knows its
 *   SHA-256 and expiry;
 * - a client certificate verified by TLS (the socket is a TLSSocket and `authorized`): its subject CN;
 * - on a request forwarded by a follower that authenticated a certificate, the `x-quorumkv-user` header —
 *   trusted only when peer credentials are enforced (the forwarded request's signature was verified). The
 *   TLS certificate of a forwarded request is the forwarding node's own and names nobody.
 *
 * Failed password checks are limited per user name (`maxFailures` per `failureWindowMs`, then 429): scrypt
 * is deliberately slow, and successful checks are cached, so only guessing pays it repeatedly.
 */
import { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { isValidName, type AuthState } from '../kv/auth.js';
import { NOT_AUTHENTICATED, PERMISSION_DENIED } from '../kv/results.js';
import type { KvStateMachine } from '../kv/state-machine.js';
import { bearerToken, sessionId, sha256, verifyPassword } from '../util/password.js';
import type { RaftHost } from './driver.js';
import { FORWARDED_HEADER } from './forward.js';
import { HttpError } from './http-common.js';

/** The header a follower names a certificate-authenticated user with when it forwards the request. */
export const USER_HEADER = 'x-quorumkv-user';

export interface AuthGateOptions {
  /** How long a successful password check is remembered (default 60 s). */
  readonly cacheTtlMs?: number;
  /** Most remembered checks (default 10,000; the oldest is forgotten first). */
  readonly cacheSize?: number;
  readonly maxFailures?: number;
  readonly failureWindowMs?: number;
  /** Whether forwarded requests are signed with the cluster secret (their `x-quorumkv-user` is then trusted). */
  readonly trustForwardedUser?: boolean;
  /** How long a follower waits for its state to catch up before refusing an unknown credential. */
  readonly catchUpMs?: number;
}

interface CachedCheck {
  readonly user: string;
  readonly credRevision: number;
  readonly until: number;
}

const UNKNOWN = Symbol('unknown credential');
const REJECTED = Symbol('rejected credential');

export function notAuthenticated(): HttpError {
  return new HttpError(401, NOT_AUTHENTICATED);
}

export function permissionDenied(): HttpError {
  return new HttpError(403, PERMISSION_DENIED);
}

/** The user a verified client certificate names (its subject CN), or undefined. */
export function userFromCertificate(
  cert: { readonly subject?: { readonly CN?: string | readonly string[] } } | null | undefined,
  authorized: boolean,
): string | undefined {
  if (!authorized) return undefined;
  const cn = cert?.subject?.CN;
  return typeof cn === 'string' && isValidName(cn) ? cn : undefined;
}

/** The user of the request's client certificate, when it came over TLS with a certificate TLS verified. */
export function certificateUser(req: FastifyRequest): string | undefined {
  const socket = req.raw.socket;
  if (!(socket instanceof TLSSocket)) return undefined;
  return userFromCertificate(socket.getPeerCertificate(), socket.authorized);
}

/** `name` and `password` of a Basic credential, if well formed. */
export function parseBasic(header: string): { name: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]{1,2048})\s*$/i.exec(header);
  if (m === null) return undefined;
  const text = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  return { name: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Failed attempts per name in a sliding window; memory bounded by sweeping idle names. */
class FailureLimiter {
  private readonly failures = new Map<string, number[]>();
  private lastSweep = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Milliseconds until `name` may try again (0: now). */
  blockedFor(name: string, now: number): number {
    const times = this.failures.get(name);
    if (times === undefined) return 0;
    const recent = times.filter((t) => t > now - this.windowMs);
    this.failures.set(name, recent);
    return recent.length >= this.limit ? (recent[0] as number) + this.windowMs - now : 0;
  }

  record(name: string, now: number): void {
    if (now - this.lastSweep >= this.windowMs) {
      this.lastSweep = now;
      for (const [k, t] of this.failures) if ((t.at(-1) ?? 0) <= now - this.windowMs) this.failures.delete(k);
    }
    const times = this.failures.get(name) ?? [];
    times.push(now);
    this.failures.set(name, times);
  }
}

export class AuthGate {
  private readonly cache = new Map<string, CachedCheck>();
  private readonly inflight = new Map<string, Promise<string | undefined>>();
  private readonly limiter: FailureLimiter;
  private readonly cacheTtlMs: number;
  private readonly cacheSize: number;
  private readonly catchUpMs: number;
  readonly trustForwardedUser: boolean;

  constructor(
    private readonly kv: KvStateMachine,
    private readonly host: RaftHost<unknown, unknown>,
    opts: AuthGateOptions = {},
  ) {
    this.cacheTtlMs = opts.cacheTtlMs ?? 60_000;
    this.cacheSize = opts.cacheSize ?? 10_000;
    this.catchUpMs = opts.catchUpMs ?? 500;
    this.trustForwardedUser = opts.trustForwardedUser ?? false;
    this.limiter = new FailureLimiter(opts.maxFailures ?? 10, opts.failureWindowMs ?? 10_000);
  }

  /** Whether auth is on in this node's applied state. */
  get enabled(): boolean {
    return this.kv.auth.enabled;
  }

  get state(): AuthState {
    return this.kv.auth;
  }

  /** Password checks remembered (for tests and status). */
  get cachedChecks(): number {
    return this.cache.size;
  }

  /**
   * The request's user, checked against this node's applied state; throws 401 (or 429 after repeated
   * password failures). `fresh`: the state is known to reflect every acknowledged change (the caller ran a
   * read barrier). Otherwise a credential the state does not know makes this node catch up once (a read
   * barrier on the leader, the known commit index on a follower) and look again.
   */
  async authenticate(req: FastifyRequest, fresh = false): Promise<string> {
    const user = await this.identify(req, fresh);
    if (user !== UNKNOWN && user !== REJECTED) return user;
    if (user === UNKNOWN) {
      await this.catchUp();
      // Final: an unknown user's password is still checked (against a dummy hash), taking as long as a known one's.
      const again = await this.identify(req, true);
      if (again !== UNKNOWN && again !== REJECTED) return again;
    }
    throw notAuthenticated();
  }

  /**
   * The request's user, who must satisfy `allowed` (403 otherwise). Like `authenticate`, a node whose state
   * may lag catches up once before refusing.
   */
  async check(
    req: FastifyRequest,
    allowed: (auth: AuthState, user: string) => boolean,
    fresh = false,
  ): Promise<string> {
    const quick = this.quickCheck(req, allowed);
    if (quick !== undefined) return quick;
    const user = await this.authenticate(req, fresh);
    if (allowed(this.kv.auth, user)) return user;
    if (!fresh && (await this.catchUp())) {
      const again = await this.authenticate(req, true);
      if (allowed(this.kv.auth, again)) return again;
    }
    throw permissionDenied();
  }

  /**
   * The common case without waiting for anything: the request's user when its Authorization header is a
   * remembered password check or a live token and the user passes `allowed`; undefined otherwise (then
   * `check` decides, and answers the refusals).
   */
  quickCheck(req: FastifyRequest, allowed: (auth: AuthState, user: string) => boolean): string | undefined {
    const header = req.headers.authorization;
    if (header === undefined) return undefined;
    const auth = this.kv.auth;
    let user: string | undefined;
    if (header.startsWith('Basic ')) {
      const hit = this.cache.get(sha256(header, 'base64'));
      if (hit !== undefined && hit.until > Date.now() && auth.user(hit.user)?.credRevision === hit.credRevision) {
        user = hit.user;
      }
    } else {
      const token = bearerToken(header);
      if (token !== undefined) user = auth.sessionUser(sessionId(token), Date.now());
    }
    return user !== undefined && allowed(auth, user) ? user : undefined;
  }

  /** The user a name and password authenticate (as a Basic credential would); throws 401 or 429. */
  async checkPasswordOf(name: string, password: string): Promise<string> {
    if (name.includes(':')) throw notAuthenticated();
    const header = 'Basic ' + Buffer.from(`${name}:${password}`, 'utf8').toString('base64');
    const user = await this.checkPassword(header, true);
    if (user === UNKNOWN || user === REJECTED) throw notAuthenticated();
    return user;
  }

  /** Headers a follower adds when it forwards the request: the certificate's user, if that is its credential. */
  forwardHeaders(req: FastifyRequest): Record<string, string> | undefined {
    if (!this.trustForwardedUser || req.headers.authorization !== undefined) return undefined;
    const user = certificateUser(req);
    return user === undefined ? undefined : { [USER_HEADER]: user };
  }

  /** Brings this node's state up to what was acknowledged before now; false if it cannot. */
  private async catchUp(): Promise<boolean> {
    try {
      if (this.host.isLeader) await this.host.readBarrier();
      else await this.host.waitApplied(this.host.commitIndex(), this.catchUpMs);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The user the request's credential names, UNKNOWN when this node's state does not know the user or the
   * token (it may lag), REJECTED when it is missing, malformed or wrong.
   */
  private async identify(req: FastifyRequest, final: boolean): Promise<string | typeof UNKNOWN | typeof REJECTED> {
    const auth = this.kv.auth;
    const header = req.headers.authorization;
    if (header === undefined) {
      // A forwarded request's TLS certificate is the forwarding node's: only the header it adds names a user.
      const forwarded = req.headers[FORWARDED_HEADER] !== undefined;
      const named = req.headers[USER_HEADER];
      let user: string | undefined;
      if (forwarded) {
        if (this.trustForwardedUser && typeof named === 'string') user = named;
      } else if (named === undefined) {
        user = certificateUser(req);
      }
      if (user === undefined) return REJECTED;
      return auth.user(user) !== undefined ? user : final ? REJECTED : UNKNOWN;
    }
    const token = bearerToken(header);
    if (token !== undefined) return auth.sessionUser(sessionId(token), Date.now()) ?? (final ? REJECTED : UNKNOWN);
    return this.checkPassword(header, final);
  }

  private async checkPassword(header: string, final: boolean): Promise<string | typeof UNKNOWN | typeof REJECTED> {
    const key = sha256(header, 'base64');
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      if (hit.until > now && this.kv.auth.user(hit.user)?.credRevision === hit.credRevision) return hit.user;
      this.cache.delete(key);
    }
    const basic = parseBasic(header);
    if (basic === undefined || !isValidName(basic.name) || basic.password.length > 1024) return REJECTED;
    if (!final && this.kv.auth.user(basic.name) === undefined) return UNKNOWN;
    const running = this.inflight.get(key);
    if (running !== undefined) return (await running) ?? REJECTED;
    const wait = this.limiter.blockedFor(basic.name, now);
    if (wait > 0) {
      throw new HttpError(
        429,
        'Too many failed authentication attempts; try again later',
        {},
        { 'retry-after': String(Math.ceil(wait / 1000)) },
      );
    }
    const p = this.verify(key, basic.name, basic.password).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return (await p) ?? REJECTED;
  }

  private async verify(key: string, name: string, password: string): Promise<string | undefined> {
    const user = this.kv.auth.user(name);
    const ok = await verifyPassword(password, user?.secret === undefined ? undefined : toHash(user.secret));
    // The user may have changed while scrypt ran: remember the revision that was checked.
    const now = Date.now();
    if (!ok || user === undefined) {
      this.limiter.record(name, now);
      return undefined;
    }
    if (this.kv.auth.user(name)?.credRevision !== user.credRevision) return undefined;
    if (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
    this.cache.set(key, { user: name, credRevision: user.credRevision, until: now + this.cacheTtlMs });
    return name;
  }
}

function toHash(secret: { readonly salt: Uint8Array; readonly hash: Uint8Array }): { salt: Buffer; hash: Buffer } {
  return {
    salt: Buffer.from(secret.salt.buffer, secret.salt.byteOffset, secret.salt.byteLength),
    hash: Buffer.from(secret.hash.buffer, secret.hash.byteOffset, secret.hash.byteLength),
  };
}
