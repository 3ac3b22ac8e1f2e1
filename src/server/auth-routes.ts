/**
 * User, role and session management of the key-value store (raft mode), and the root-only guard on
 * `/admin/*`. Every change is an auth command proposed on the leader (followers forward, Authorization
 * header included); passwords are hashed on the leader before proposing, so the log and the snapshots hold
 * only scrypt hashes. While auth is on, every route here but `/auth/status` and `/auth/authenticate`
 * needs the root role (a user may read its own record).
 *
 *   GET    /auth/status                          {enabled, revision, user?, roles?}   (the caller, if it sent credentials)
 *   POST   /auth/enable | /auth/disable          {"result":"enabled"|"disabled"}     (enable: 409 without a user "root")
 *   POST   /auth/authenticate {name, password}   {"token", "name", "ttl_seconds"}    (auth on only)
 *   DELETE /auth/authenticate                    logs the bearer token out
 *   GET    /auth/users                           {"users":[{name, roles, password}]}
 *   POST   /auth/users {name, password} | {name, "no_password": true}      201 created; 409 exists
 *   GET    /auth/users/<name>                    {name, roles, password}
 *   DELETE /auth/users/<name>
 *   PUT    /auth/users/<name>/password {password} | {"no_password": true}
 *   POST   /auth/users/<name>/roles {role}       grant
 *   DELETE /auth/users/<name>/roles/<role>       revoke
 *   GET    /auth/roles                           {"roles":[{name, permissions:[{prefix, read, write}]}]}
 *   POST   /auth/roles {name}
 *   GET    /auth/roles/<name>
 *   DELETE /auth/roles/<name>
 *   PUT    /auth/roles/<name>/permissions {prefix, read?, write?}   sets the permission on that prefix
 *   DELETE /auth/roles/<name>/permissions?prefix=<p>
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isValidName, ROOT_ROLE, type AuthState, type RoleRecord, type UserRecord } from '../kv/auth.js';
import { encodeCommand, type AuthAction, type AuthCommand } from '../kv/commands.js';
import { renderResult } from '../kv/results.js';
import { hashPassword, bearerToken, newToken, sessionId } from '../util/password.js';
import { dispatch, type Rendered } from './dispatch.js';
import { HttpError, methodNotAllowed } from './http-common.js';
import { certificateUser, notAuthenticated, type AuthGate } from './kv-auth.js';
import type { KvRouteContext } from './routes.js';

export interface AuthRouteContext extends KvRouteContext {
  readonly gate: AuthGate;
  /** How long a token from `POST /auth/authenticate` is valid (default 1 hour). */
  readonly tokenTtlMs?: number;
}

export const DEFAULT_TOKEN_TTL_MS = 60 * 60 * 1000;
const MIN_PASSWORD = 8;
const MAX_PASSWORD = 256;

type Allowed = (auth: AuthState, user: string) => boolean;
const rootOnly: Allowed = (auth, user) => auth.isRoot(user);

interface NameParams {
  Params: { name: string };
}
interface RoleParams {
  Params: { name: string; role: string };
}
interface PrefixQuery {
  Params: { name: string };
  Querystring: { prefix?: string };
}

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, 'Request body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

function newName(v: unknown, what: 'User' | 'Role'): string {
  if (typeof v !== 'string' || !isValidName(v)) {
    throw new HttpError(400, `${what} name must be 1 to 64 characters of A-Z, a-z, 0-9, "_", ".", "@" or "-"`);
  }
  return v;
}

/** A name from the URL: one that cannot exist is simply not found. */
function existingName(v: string, what: 'User' | 'Role'): string {
  if (!isValidName(v)) throw new HttpError(404, `${what} does not exist`);
  return v;
}

/** The password of a user body: a string, or none with `"no_password": true` (certificate-only users). */
function passwordOf(b: Record<string, unknown>): string | undefined {
  if (b.no_password === true && b.password === undefined) return undefined;
  const pw = b.password;
  if (typeof pw !== 'string' || pw.length < MIN_PASSWORD || pw.length > MAX_PASSWORD) {
    throw new HttpError(
      400,
      `Password must be ${MIN_PASSWORD} to ${MAX_PASSWORD} characters (or "no_password": true for a user that only authenticates with a client certificate)`,
    );
  }
  return pw;
}

function userJson(u: UserRecord): Record<string, unknown> {
  return { name: u.name, roles: u.roles, password: u.secret !== undefined };
}

function roleJson(r: RoleRecord): Record<string, unknown> {
  if (r.name === ROOT_ROLE)
    return { name: r.name, permissions: [{ prefix: '', read: true, write: true }], builtin: true };
  return { name: r.name, permissions: r.permissions.map((p) => ({ prefix: p.prefix, read: p.read, write: p.write })) };
}

export function registerAuthRoutes(app: FastifyInstance, ctx: AuthRouteContext): void {
  const { host, gate } = ctx;
  const tokenTtlMs = ctx.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS;

  // `/admin/*` (failure simulation, fault injection) is root-only while auth is on. The hook attaches to
  // the admin routes registered after this one, leaving every other route without an extra hook.
  const adminGuard = async (req: FastifyRequest): Promise<void> => {
    if (gate.enabled) await gate.check(req, rootOnly);
  };
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/admin/')) return;
    const existing = route.preHandler;
    route.preHandler =
      existing === undefined ? [adminGuard] : [adminGuard, ...(Array.isArray(existing) ? existing : [existing])];
  });

  const rendered = (cmd: AuthCommand) => host.propose(encodeCommand(cmd), cmd).then((r) => renderResult(r, ctx.id));

  /** Proposes the action `build` makes on the leader, by a root user while auth is on. */
  const manage = (req: FastifyRequest, reply: FastifyReply, build: () => AuthAction | Promise<AuthAction>) =>
    dispatch(ctx, req, reply, async () => {
      const by = gate.enabled ? await gate.check(req, rootOnly) : undefined;
      const action = await build();
      return rendered(by === undefined ? { op: 'auth', action } : { op: 'auth', action, by });
    });

  /** Answers from the leader's state once a read barrier has passed, for a user that passes `allowed`. */
  const inspect = (req: FastifyRequest, reply: FastifyReply, allowed: Allowed, local: () => Rendered) =>
    dispatch(ctx, req, reply, async () => {
      await host.readBarrier();
      if (gate.enabled) await gate.check(req, allowed, true);
      return local();
    });

  const secretOf = async (password: string | undefined) =>
    password === undefined ? {} : { secret: await hashPassword(password) };

  app.get('/auth/status', async (req) => {
    ctx.checkServing();
    const auth = gate.state;
    const body: Record<string, unknown> = { enabled: auth.enabled, revision: auth.revision };
    if (auth.enabled && (req.headers.authorization !== undefined || certificateUser(req) !== undefined)) {
      const user = await gate.authenticate(req);
      body.user = user;
      body.roles = gate.state.user(user)?.roles ?? [];
    }
    return body;
  });
  methodNotAllowed(app, '/auth/status', ['GET']);

  app.post('/auth/enable', (req, reply) => manage(req, reply, () => ({ kind: 'enable' })));
  methodNotAllowed(app, '/auth/enable', ['POST']);
  app.post('/auth/disable', (req, reply) => manage(req, reply, () => ({ kind: 'disable' })));
  methodNotAllowed(app, '/auth/disable', ['POST']);

  app.post('/auth/authenticate', (req, reply) => {
    const b = objectBody(req.body);
    if (typeof b.name !== 'string' || typeof b.password !== 'string') {
      throw new HttpError(400, 'Authentication needs a name and a password');
    }
    const name = b.name;
    const password = b.password;
    return dispatch(ctx, req, reply, async () => {
      await host.readBarrier();
      if (!gate.enabled) return { status: 409, body: { error: 'Auth is not enabled' } };
      await gate.checkPasswordOf(name, password);
      const token = newToken();
      const now = Date.now();
      const r = await host.propose(
        encodeCommand({
          op: 'auth',
          action: { kind: 'login', name, session: sessionId(token), time: now, expires: now + tokenTtlMs },
        }),
      );
      if (r.kind === 'auth' && r.error === undefined) {
        return { status: 200, body: { token, name, ttl_seconds: Math.floor(tokenTtlMs / 1000) } };
      }
      return renderResult(r, ctx.id);
    });
  });
  app.delete('/auth/authenticate', (req, reply) => {
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) throw notAuthenticated();
    return dispatch(ctx, req, reply, () =>
      rendered({ op: 'auth', action: { kind: 'logout', session: sessionId(token) } }),
    );
  });
  methodNotAllowed(app, '/auth/authenticate', ['POST', 'DELETE']);

  app.get('/auth/users', (req, reply) =>
    inspect(req, reply, rootOnly, () => ({
      status: 200,
      body: { users: gate.state.listUsers().map(userJson), leader: ctx.id },
    })),
  );
  app.post('/auth/users', (req, reply) => {
    const b = objectBody(req.body);
    const name = newName(b.name, 'User');
    const password = passwordOf(b);
    return manage(req, reply, async () => ({ kind: 'user-add', name, ...(await secretOf(password)) }));
  });
  methodNotAllowed(app, '/auth/users', ['GET', 'POST']);

  app.get<NameParams>('/auth/users/:name', (req, reply) => {
    const name = existingName(req.params.name, 'User');
    return inspect(
      req,
      reply,
      (auth, user) => user === name || auth.isRoot(user),
      () => {
        const u = gate.state.user(name);
        return u === undefined
          ? { status: 404, body: { error: 'User does not exist' } }
          : { status: 200, body: { ...userJson(u), leader: ctx.id } };
      },
    );
  });
  app.delete<NameParams>('/auth/users/:name', (req, reply) => {
    const name = existingName(req.params.name, 'User');
    return manage(req, reply, () => ({ kind: 'user-delete', name }));
  });
  methodNotAllowed(app, '/auth/users/:name', ['GET', 'DELETE']);

  app.put<NameParams>('/auth/users/:name/password', (req, reply) => {
    const name = existingName(req.params.name, 'User');
    const password = passwordOf(objectBody(req.body));
    return manage(req, reply, async () => ({ kind: 'user-password', name, ...(await secretOf(password)) }));
  });
  methodNotAllowed(app, '/auth/users/:name/password', ['PUT']);

  app.post<NameParams>('/auth/users/:name/roles', (req, reply) => {
    const name = existingName(req.params.name, 'User');
    const role = objectBody(req.body).role;
    if (typeof role !== 'string' || !isValidName(role)) throw new HttpError(400, 'Grant needs a role name');
    return manage(req, reply, () => ({ kind: 'user-grant', name, role }));
  });
  methodNotAllowed(app, '/auth/users/:name/roles', ['POST']);
  app.delete<RoleParams>('/auth/users/:name/roles/:role', (req, reply) => {
    const name = existingName(req.params.name, 'User');
    const role = existingName(req.params.role, 'Role');
    return manage(req, reply, () => ({ kind: 'user-revoke', name, role }));
  });
  methodNotAllowed(app, '/auth/users/:name/roles/:role', ['DELETE']);

  app.get('/auth/roles', (req, reply) =>
    inspect(req, reply, rootOnly, () => ({
      status: 200,
      body: { roles: gate.state.listRoles().map(roleJson), leader: ctx.id },
    })),
  );
  app.post('/auth/roles', (req, reply) => {
    const name = newName(objectBody(req.body).name, 'Role');
    return manage(req, reply, () => ({ kind: 'role-add', name }));
  });
  methodNotAllowed(app, '/auth/roles', ['GET', 'POST']);

  app.get<NameParams>('/auth/roles/:name', (req, reply) => {
    const name = existingName(req.params.name, 'Role');
    return inspect(
      req,
      reply,
      (auth, user) => auth.isRoot(user) || (auth.user(user)?.roles.includes(name) ?? false),
      () => {
        const r = gate.state.role(name);
        return r === undefined
          ? { status: 404, body: { error: 'Role does not exist' } }
          : { status: 200, body: { ...roleJson(r), leader: ctx.id } };
      },
    );
  });
  app.delete<NameParams>('/auth/roles/:name', (req, reply) => {
    const name = existingName(req.params.name, 'Role');
    return manage(req, reply, () => ({ kind: 'role-delete', name }));
  });
  methodNotAllowed(app, '/auth/roles/:name', ['GET', 'DELETE']);

  app.put<NameParams>('/auth/roles/:name/permissions', (req, reply) => {
    const name = existingName(req.params.name, 'Role');
    const b = objectBody(req.body);
    const prefix = b.prefix;
    if (typeof prefix !== 'string') throw new HttpError(400, 'A permission needs a prefix ("" for every key)');
    if (Buffer.byteLength(prefix, 'utf8') > ctx.limits.maxKeyBytes) throw new HttpError(400, 'Key is too long');
    for (const f of ['read', 'write'] as const) {
      if (b[f] !== undefined && typeof b[f] !== 'boolean') throw new HttpError(400, `${f} must be a boolean`);
    }
    const read = b.read === true;
    const write = b.write === true;
    if (!read && !write) throw new HttpError(400, 'A permission grants read, write or both');
    return manage(req, reply, () => ({ kind: 'role-grant', name, permission: { prefix, read, write } }));
  });
  app.delete<PrefixQuery>(
    '/auth/roles/:name/permissions',
    { schema: { querystring: { type: 'object', properties: { prefix: { type: 'string' } } } } },
    (req, reply) => {
      const name = existingName(req.params.name, 'Role');
      const prefix = req.query.prefix;
      if (prefix === undefined) throw new HttpError(400, 'Revoke needs ?prefix= (empty for the all-keys permission)');
      return manage(req, reply, () => ({ kind: 'role-revoke', name, prefix }));
    },
  );
  methodNotAllowed(app, '/auth/roles/:name/permissions', ['PUT', 'DELETE']);
}
