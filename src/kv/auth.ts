/**
 * Users, roles and permissions: the replicated auth state of the key-value state machine (role-based access
 * control in the manner of etcd's). Deterministic like the rest of the state machine: no clock (a login
 * carries the leader's time, which also expires older sessions), ordered snapshots.
 *
 * - A user has a name, an optional password (its scrypt salt and hash; no password: client certificates
 *   only) and roles. A role has permissions `{prefix, read, write}`: read or write on every key starting
 *   with the prefix (`""`: every key).
 * - The built-in `root` role may do everything: every key, `/admin/*`, users, roles, the enabled flag. It
 *   cannot be created, deleted or given permissions.
 * - Auth is enabled by a replicated command, only once a user named `root` exists (it then holds the root
 *   role). While enabled, the root user cannot be deleted nor lose the root role, so the cluster always has
 *   an administrator.
 * - While auth is disabled every request is allowed and management needs no credential (as in etcd).
 * - Sessions are bearer tokens known by their SHA-256: issued by `login`, dropped by `logout`, at expiry
 *   (by the next login's time), when their user is deleted or changes password, and when auth is disabled.
 *   At most `MAX_SESSIONS_PER_USER` per user (the soonest to expire goes first).
 */
import type { AuthAction, AuthCommand, Command, PasswordSecret, Permission } from './commands.js';
import type { ApplyResult } from './results.js';

export const ROOT_ROLE = 'root';
export const ROOT_USER = 'root';
export const MAX_SESSIONS_PER_USER = 64;

/** User and role names: 1 to 64 of A-Z a-z 0-9 `_ . @ -` (no `:`, which separates a Basic credential). */
export const NAME_PATTERN = /^[A-Za-z0-9_.@-]{1,64}$/;

export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

export interface UserRecord {
  readonly name: string;
  /** Absent: the user has no password (client certificates only). */
  readonly secret?: PasswordSecret;
  /** Role names, sorted. */
  readonly roles: readonly string[];
  /**
   * Log index at which the user was created or its password last changed: a credential verified against
   * an older one is void (a cached verification of a deleted and re-created user, say).
   */
  readonly credRevision: number;
}

export interface RoleRecord {
  readonly name: string;
  /** Sorted by prefix; at most one per prefix. */
  readonly permissions: readonly Permission[];
}

interface Session {
  readonly user: string;
  readonly expires: number;
}

/** What a user may do: everything (root), or the union of its roles' permissions. */
type Grants = 'root' | readonly Permission[];

/** Serialised form (plain arrays, sorted by name / session id). */
export type AuthSnapshot = [
  enabled: boolean,
  revision: number,
  users: [name: string, salt: Uint8Array | null, hash: Uint8Array | null, roles: string[], credRevision: number][],
  roles: [name: string, permissions: [prefix: string, read: boolean, write: boolean][]][],
  sessions: [session: string, user: string, expires: number][],
];

const ok = (status: number, result: string): ApplyResult => ({ kind: 'auth', status, result });
const err = (status: number, error: string): ApplyResult => ({ kind: 'auth', status, error });

const USER_MISSING = err(404, 'User does not exist');
const ROLE_MISSING = err(404, 'Role does not exist');

function byName<T>(m: ReadonlyMap<string, T>): [string, T][] {
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export class AuthState {
  private enabledFlag = false;
  /** Index of the last change (0: none yet). */
  private rev = 0;
  private users = new Map<string, UserRecord>();
  private roles = new Map<string, RoleRecord>();
  private sessions = new Map<string, Session>();
  /** Each user's grants, computed on first use after a change. */
  private readonly grantCache = new Map<string, Grants>();

  get enabled(): boolean {
    return this.enabledFlag;
  }

  /** Log index of the last change to users, roles, sessions or the flag. */
  get revision(): number {
    return this.rev;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  user(name: string): UserRecord | undefined {
    return this.users.get(name);
  }

  /** A role, the built-in root role included (with no listed permissions). */
  role(name: string): RoleRecord | undefined {
    if (name === ROOT_ROLE) return { name, permissions: [] };
    return this.roles.get(name);
  }

  listUsers(): UserRecord[] {
    return byName(this.users).map(([, u]) => u);
  }

  /** Every role, root first. */
  listRoles(): RoleRecord[] {
    return [{ name: ROOT_ROLE, permissions: [] }, ...byName(this.roles).map(([, r]) => r)];
  }

  /** The user of a live session (`now` is this node's clock), if the session and its user exist. */
  sessionUser(session: string, now: number): string | undefined {
    const s = this.sessions.get(session);
    if (s === undefined || s.expires <= now || !this.users.has(s.user)) return undefined;
    return s.user;
  }

  isRoot(user: string): boolean {
    return this.grants(user) === 'root';
  }

  canRead(user: string, key: string): boolean {
    const g = this.grants(user);
    if (g === 'root') return true;
    for (const p of g) if (p.read && key.startsWith(p.prefix)) return true;
    return false;
  }

  canWrite(user: string, key: string): boolean {
    const g = this.grants(user);
    if (g === 'root') return true;
    for (const p of g) if (p.write && key.startsWith(p.prefix)) return true;
    return false;
  }

  /** Read on a prefix covering `prefix`: every key a listing of `prefix` could return is readable. */
  canReadPrefix(user: string, prefix: string): boolean {
    return this.canRead(user, prefix);
  }

  /**
   * Whether `user` may run a key command: write on every key a put or delete may change, read on every
   * key a transaction compares or gets — in both branches, since which one runs is not known beforehand.
   */
  permits(user: string, cmd: Command): boolean {
    if (cmd.op !== 'txn') return this.canWrite(user, cmd.key);
    if (this.isRoot(user)) return true;
    for (const c of cmd.compare) if (!this.canRead(user, c.key)) return false;
    for (const op of [...cmd.success, ...cmd.failure]) {
      if (!(op.op === 'get' ? this.canRead(user, op.key) : this.canWrite(user, op.key))) return false;
    }
    return true;
  }

  private grants(user: string): Grants {
    const cached = this.grantCache.get(user);
    if (cached !== undefined) return cached;
    const u = this.users.get(user);
    let g: Grants = [];
    if (u !== undefined) {
      if (u.roles.includes(ROOT_ROLE)) g = 'root';
      else g = u.roles.flatMap((r) => this.roles.get(r)?.permissions ?? []);
    }
    this.grantCache.set(user, g);
    return g;
  }

  /** Applies an auth command committed at `index`. Never throws for a well-formed command. */
  apply(index: number, cmd: AuthCommand): ApplyResult {
    const a = cmd.action;
    if (this.enabledFlag && a.kind !== 'login' && a.kind !== 'logout') {
      if (cmd.by === undefined || !this.users.has(cmd.by)) return { kind: 'unauthenticated' };
      if (!this.isRoot(cmd.by)) return { kind: 'permission-denied' };
    }
    const r = this.execute(index, a);
    if (r.kind === 'auth' && r.error === undefined) {
      this.rev = index;
      this.grantCache.clear();
    }
    return r;
  }

  private execute(index: number, a: AuthAction): ApplyResult {
    switch (a.kind) {
      case 'user-add': {
        if (!isValidName(a.name)) return err(400, 'Invalid user name');
        if (this.users.has(a.name)) return err(409, 'User already exists');
        this.users.set(a.name, { name: a.name, ...secretOf(a.secret), roles: [], credRevision: index });
        return ok(201, 'created');
      }
      case 'user-delete': {
        if (!this.users.has(a.name)) return USER_MISSING;
        if (this.enabledFlag && a.name === ROOT_USER) {
          return err(409, 'The root user cannot be deleted while auth is enabled');
        }
        this.users.delete(a.name);
        this.dropSessionsOf(a.name);
        return ok(200, 'deleted');
      }
      case 'user-password': {
        const u = this.users.get(a.name);
        if (u === undefined) return USER_MISSING;
        this.users.set(a.name, { name: u.name, ...secretOf(a.secret), roles: u.roles, credRevision: index });
        this.dropSessionsOf(a.name);
        return ok(200, 'updated');
      }
      case 'user-grant': {
        const u = this.users.get(a.name);
        if (u === undefined) return USER_MISSING;
        if (this.role(a.role) === undefined) return ROLE_MISSING;
        if (!u.roles.includes(a.role)) this.users.set(a.name, { ...u, roles: [...u.roles, a.role].sort() });
        return ok(200, 'granted');
      }
      case 'user-revoke': {
        const u = this.users.get(a.name);
        if (u === undefined) return USER_MISSING;
        if (!u.roles.includes(a.role)) return err(404, 'User does not have this role');
        if (this.enabledFlag && a.name === ROOT_USER && a.role === ROOT_ROLE) {
          return err(409, 'The root user keeps the root role while auth is enabled');
        }
        this.users.set(a.name, { ...u, roles: u.roles.filter((r) => r !== a.role) });
        return ok(200, 'revoked');
      }
      case 'role-add': {
        if (!isValidName(a.name)) return err(400, 'Invalid role name');
        if (a.name === ROOT_ROLE || this.roles.has(a.name)) return err(409, 'Role already exists');
        this.roles.set(a.name, { name: a.name, permissions: [] });
        return ok(201, 'created');
      }
      case 'role-delete': {
        if (a.name === ROOT_ROLE) return err(409, 'The root role cannot be deleted');
        if (!this.roles.has(a.name)) return ROLE_MISSING;
        this.roles.delete(a.name);
        for (const u of this.listUsers()) {
          if (u.roles.includes(a.name)) this.users.set(u.name, { ...u, roles: u.roles.filter((r) => r !== a.name) });
        }
        return ok(200, 'deleted');
      }
      case 'role-grant': {
        if (a.name === ROOT_ROLE) return err(409, "The root role's permissions cannot be changed");
        const role = this.roles.get(a.name);
        if (role === undefined) return ROLE_MISSING;
        const p = a.permission;
        if (!p.read && !p.write) return err(400, 'A permission grants read, write or both');
        const permissions = [...role.permissions.filter((q) => q.prefix !== p.prefix), { ...p }].sort((x, y) =>
          x.prefix < y.prefix ? -1 : x.prefix > y.prefix ? 1 : 0,
        );
        this.roles.set(a.name, { name: a.name, permissions });
        return ok(200, 'granted');
      }
      case 'role-revoke': {
        if (a.name === ROOT_ROLE) return err(409, "The root role's permissions cannot be changed");
        const role = this.roles.get(a.name);
        if (role === undefined) return ROLE_MISSING;
        if (!role.permissions.some((q) => q.prefix === a.prefix)) {
          return err(404, 'The role has no permission on this prefix');
        }
        this.roles.set(a.name, { name: a.name, permissions: role.permissions.filter((q) => q.prefix !== a.prefix) });
        return ok(200, 'revoked');
      }
      case 'enable': {
        const root = this.users.get(ROOT_USER);
        if (root === undefined) return err(409, 'Auth cannot be enabled without a root user');
        if (!root.roles.includes(ROOT_ROLE)) {
          this.users.set(ROOT_USER, { ...root, roles: [...root.roles, ROOT_ROLE].sort() });
        }
        this.enabledFlag = true;
        return ok(200, 'enabled');
      }
      case 'disable': {
        this.enabledFlag = false;
        this.sessions.clear();
        return ok(200, 'disabled');
      }
      case 'login': {
        if (!this.enabledFlag) return err(409, 'Auth is not enabled');
        if (!this.users.has(a.name)) return { kind: 'unauthenticated' };
        for (const [sid, s] of this.sessions) if (s.expires <= a.time) this.sessions.delete(sid);
        this.sessions.set(a.session, { user: a.name, expires: a.expires });
        const mine = [...this.sessions].filter(([, s]) => s.user === a.name);
        if (mine.length > MAX_SESSIONS_PER_USER) {
          mine.sort(([ia, x], [ib, y]) => x.expires - y.expires || (ia < ib ? -1 : ia > ib ? 1 : 0));
          for (const [sid] of mine.slice(0, mine.length - MAX_SESSIONS_PER_USER)) this.sessions.delete(sid);
        }
        return ok(201, 'created');
      }
      case 'logout': {
        if (!this.sessions.delete(a.session)) return { kind: 'unauthenticated' };
        return ok(200, 'deleted');
      }
    }
  }

  private dropSessionsOf(user: string): void {
    for (const [sid, s] of this.sessions) if (s.user === user) this.sessions.delete(sid);
  }

  snapshot(): AuthSnapshot {
    return [
      this.enabledFlag,
      this.rev,
      byName(this.users).map(([, u]) => [
        u.name,
        u.secret?.salt ?? null,
        u.secret?.hash ?? null,
        [...u.roles],
        u.credRevision,
      ]),
      byName(this.roles).map(([, r]) => [r.name, r.permissions.map((p) => [p.prefix, p.read, p.write])]),
      byName(this.sessions).map(([sid, s]) => [sid, s.user, s.expires]),
    ];
  }

  /** The state a snapshot describes; throws on a malformed one. */
  static restore(raw: unknown): AuthState {
    const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
    const isStr = (x: unknown): x is string => typeof x === 'string';
    if (!Array.isArray(raw) || raw.length !== 5) bad('state');
    const [enabled, rev, users, roles, sessions] = raw as unknown[];
    if (typeof enabled !== 'boolean' || !isInt(rev)) bad('flag');
    if (!Array.isArray(users) || !Array.isArray(roles) || !Array.isArray(sessions)) bad('tables');
    const s = new AuthState();
    s.enabledFlag = enabled as boolean;
    s.rev = rev as number;
    for (const u of users as unknown[]) {
      if (!Array.isArray(u) || u.length !== 5 || !isStr(u[0]) || !Array.isArray(u[3]) || !isInt(u[4])) bad('user');
      const [name, salt, hash, userRoles, credRevision] = u as [unknown, unknown, unknown, unknown[], number];
      if (!(userRoles as unknown[]).every(isStr)) bad('user roles');
      let secret: PasswordSecret | undefined;
      if (salt instanceof Uint8Array && hash instanceof Uint8Array) secret = { salt, hash };
      else if (salt !== null || hash !== null) bad('user secret');
      s.users.set(name as string, {
        name: name as string,
        ...secretOf(secret),
        roles: userRoles as string[],
        credRevision,
      });
    }
    for (const r of roles as unknown[]) {
      if (!Array.isArray(r) || r.length !== 2 || !isStr(r[0]) || !Array.isArray(r[1])) bad('role');
      const permissions: Permission[] = [];
      for (const p of r[1] as unknown[]) {
        if (
          !Array.isArray(p) ||
          p.length !== 3 ||
          !isStr(p[0]) ||
          typeof p[1] !== 'boolean' ||
          typeof p[2] !== 'boolean'
        )
          bad('permission');
        const [prefix, read, write] = p as [string, boolean, boolean];
        permissions.push({ prefix, read, write });
      }
      s.roles.set(r[0] as string, { name: r[0] as string, permissions });
    }
    for (const x of sessions as unknown[]) {
      if (!Array.isArray(x) || x.length !== 3 || !isStr(x[0]) || !isStr(x[1]) || !isInt(x[2])) bad('session');
      s.sessions.set(x[0] as string, { user: x[1] as string, expires: x[2] as number });
    }
    return s;
  }
}

function bad(what: string): never {
  throw new Error(`Malformed kv snapshot: auth ${what}`);
}

function secretOf(secret: PasswordSecret | undefined): { secret?: PasswordSecret } {
  return secret === undefined
    ? {}
    : { secret: { salt: Uint8Array.from(secret.salt), hash: Uint8Array.from(secret.hash) } };
}
