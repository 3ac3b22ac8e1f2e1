/**
 * User, role and session management of a raft-mode key-value cluster (the `/auth/*` routes; see
 * docs/security.md, "Users, roles and permissions"). Calls go through a Client, so they find the leader,
 * fail over and carry the client's credentials; refusals throw KvError (401, 403, 404, 409...).
 *
 * Management calls are not deduplicated: one retried after a timeout may answer 409 or 404 for its own
 * first attempt.
 */
import type { Client } from './client.js';
import type { JsonValue } from './types.js';

export interface AuthStatus {
  readonly enabled: boolean;
  readonly revision: number;
  /** The caller, when it sent credentials and auth is on. */
  readonly user?: string;
  readonly roles?: readonly string[];
}

export interface UserInfo {
  readonly name: string;
  readonly roles: readonly string[];
  /** Whether the user has a password (otherwise: client certificates only). */
  readonly password: boolean;
}

export interface PermissionInfo {
  readonly prefix: string;
  readonly read: boolean;
  readonly write: boolean;
}

export interface RoleInfo {
  readonly name: string;
  readonly permissions: readonly PermissionInfo[];
  /** The built-in root role. */
  readonly builtin?: boolean;
}

type Body = Readonly<Record<string, JsonValue>>;

const str = (v: JsonValue | undefined): string => (typeof v === 'string' ? v : '');
const strings = (v: JsonValue | undefined): string[] =>
  Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];

function userOf(b: JsonValue | undefined): UserInfo {
  const o = (b ?? {}) as Body;
  return { name: str(o.name), roles: strings(o.roles), password: o.password === true };
}

function roleOf(b: JsonValue | undefined): RoleInfo {
  const o = (b ?? {}) as Body;
  const perms = Array.isArray(o.permissions) ? o.permissions : [];
  return {
    name: str(o.name),
    permissions: perms.map((p) => {
      const q = (p ?? {}) as Body;
      return { prefix: str(q.prefix), read: q.read === true, write: q.write === true };
    }),
    ...(o.builtin === true ? { builtin: true } : {}),
  };
}

const seg = (s: string): string => encodeURIComponent(s);

export class AuthAdmin {
  constructor(private readonly client: Client) {}

  async status(): Promise<AuthStatus> {
    const { body } = await this.client.request('GET', '/auth/status');
    return {
      enabled: body.enabled === true,
      revision: typeof body.revision === 'number' ? body.revision : 0,
      ...(typeof body.user === 'string' ? { user: body.user, roles: strings(body.roles) } : {}),
    };
  }

  /** Turns auth on (needs a user named root; while auth is off anyone may, as in etcd). */
  async enable(): Promise<void> {
    await this.client.request('POST', '/auth/enable');
  }

  async disable(): Promise<void> {
    await this.client.request('POST', '/auth/disable');
  }

  /** A bearer token for `name` (valid for the cluster's token lifetime, by default one hour). */
  async authenticate(name: string, password: string): Promise<{ token: string; ttlSeconds: number }> {
    const { body } = await this.client.request('POST', '/auth/authenticate', { name, password });
    return { token: str(body.token), ttlSeconds: typeof body.ttl_seconds === 'number' ? body.ttl_seconds : 0 };
  }

  /** Ends the session of the client's own bearer token. */
  async logout(): Promise<void> {
    await this.client.request('DELETE', '/auth/authenticate');
  }

  async users(): Promise<UserInfo[]> {
    const { body } = await this.client.request('GET', '/auth/users');
    return (Array.isArray(body.users) ? body.users : []).map(userOf);
  }

  async user(name: string): Promise<UserInfo> {
    return userOf((await this.client.request('GET', `/auth/users/${seg(name)}`)).body);
  }

  /** Adds a user; without a password it can only authenticate with a client certificate (CN = name). */
  async addUser(name: string, password: string | undefined): Promise<void> {
    const body: Body = password === undefined ? { name, no_password: true } : { name, password };
    await this.client.request('POST', '/auth/users', body);
  }

  async deleteUser(name: string): Promise<void> {
    await this.client.request('DELETE', `/auth/users/${seg(name)}`);
  }

  /** Sets (or, with undefined, removes) a user's password; its tokens are dropped. */
  async setPassword(name: string, password: string | undefined): Promise<void> {
    const body: Body = password === undefined ? { no_password: true } : { password };
    await this.client.request('PUT', `/auth/users/${seg(name)}/password`, body);
  }

  async grantRole(user: string, role: string): Promise<void> {
    await this.client.request('POST', `/auth/users/${seg(user)}/roles`, { role });
  }

  async revokeRole(user: string, role: string): Promise<void> {
    await this.client.request('DELETE', `/auth/users/${seg(user)}/roles/${seg(role)}`);
  }

  async roles(): Promise<RoleInfo[]> {
    const { body } = await this.client.request('GET', '/auth/roles');
    return (Array.isArray(body.roles) ? body.roles : []).map(roleOf);
  }

  async role(name: string): Promise<RoleInfo> {
    return roleOf((await this.client.request('GET', `/auth/roles/${seg(name)}`)).body);
  }

  async addRole(name: string): Promise<void> {
    await this.client.request('POST', '/auth/roles', { name });
  }

  async deleteRole(name: string): Promise<void> {
    await this.client.request('DELETE', `/auth/roles/${seg(name)}`);
  }

  /** Sets the role's permission on `prefix` (`""`: every key), replacing any it had there. */
  async grantPermission(role: string, p: PermissionInfo): Promise<void> {
    await this.client.request('PUT', `/auth/roles/${seg(role)}/permissions`, {
      prefix: p.prefix,
      read: p.read,
      write: p.write,
    });
  }

  async revokePermission(role: string, prefix: string): Promise<void> {
    await this.client.request('DELETE', `/auth/roles/${seg(role)}/permissions?prefix=${seg(prefix)}`);
  }
}

/**
 * Turns auth on with a root user whose password is `password`: creates root (or, while auth is still
 * off, resets the password of an existing root), then enables auth. Returns false, changing nothing, if
 * auth was already on.
 */
export async function enableAuthWithRoot(admin: AuthAdmin, password: string): Promise<boolean> {
  if ((await admin.status()).enabled) return false;
  const exists = (await admin.users()).some((u) => u.name === 'root');
  if (exists) await admin.setPassword('root', password);
  else await admin.addUser('root', password);
  await admin.enable();
  return true;
}
