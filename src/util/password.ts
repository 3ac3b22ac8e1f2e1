/**
 * Credentials shared by the chat app and the key-value store's users: scrypt password hashes (computed on
 * the leader before proposing, so no password reaches the log), bearer tokens (the log and the state hold
 * only their SHA-256), constant-time comparison and a per-name attempt rate limit.
 */
import { createHash, hash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** scrypt cost: N = 2^14, r = 8, p = 1 (16 MiB, tens of milliseconds). */
const SCRYPT = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

function derive(password: string, salt: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_BYTES, SCRYPT, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export interface PasswordHash {
  readonly salt: Buffer;
  readonly hash: Buffer;
}

/** A new per-user salt and the password's scrypt hash under it. */
export async function hashPassword(password: string): Promise<PasswordHash> {
  const salt = randomBytes(SALT_BYTES);
  return { salt, hash: await derive(password, salt) };
}

/** A fixed hash that unknown usernames are checked against, so that they take as long as known ones. */
const DUMMY: Promise<PasswordHash> = hashPassword(randomBytes(16).toString('hex'));

/** Checks a password against a stored hash (or the dummy one when the user is unknown), in constant time. */
export async function verifyPassword(password: string, stored: PasswordHash | undefined): Promise<boolean> {
  const target = stored ?? (await DUMMY);
  const key = await derive(password, target.salt);
  const ok = key.length === target.hash.length && timingSafeEqual(key, target.hash);
  return ok && stored !== undefined;
}

/** A fresh bearer token (256 random bits, URL-safe). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** SHA-256 of a string (one-shot `crypto.hash` where Node has it: about three times faster). */
export function sha256(text: string, encoding: 'hex' | 'base64'): string {
  if (typeof hash === 'function') return hash('sha256', text, encoding);
  return createHash('sha256').update(text).digest(encoding);
}

/** What the log and the database know a token by. */
export function sessionId(token: string): string {
  return sha256(token, 'hex');
}

/** The bearer token of an `Authorization: Bearer <token>` header, if well formed. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer ([A-Za-z0-9._~+/=-]{1,512})$/i.exec(header.trim());
  return m === null ? undefined : m[1];
}

/**
 * At most `limit` attempts per key in any `windowMs` (a sliding window of attempt times). Memory is bounded:
 * keys with no recent attempt are dropped on the way.
 */
export class RateLimiter {
  private readonly attempts = new Map<string, number[]>();
  private lastSweep = 0;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  /** Records an attempt at `now`; returns 0 if allowed, else the milliseconds until one is allowed again. */
  take(key: string, now: number): number {
    this.sweep(now);
    const since = now - this.windowMs;
    const times = (this.attempts.get(key) ?? []).filter((t) => t > since);
    if (times.length >= this.limit) {
      this.attempts.set(key, times);
      return (times[0] as number) + this.windowMs - now;
    }
    times.push(now);
    this.attempts.set(key, times);
    return 0;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    for (const [k, times] of this.attempts) if ((times.at(-1) ?? 0) <= now - this.windowMs) this.attempts.delete(k);
  }
}
