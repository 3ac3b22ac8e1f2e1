/**
 * Every mode's routes as the fuzzer sees them: how to draft a broken request for each, and the model of
 * which requests could be valid state-changing ones (see model.ts). The rules are those of
 * ../shared/api.md and docs/security.md, written down here independently of the handlers.
 */
import { Deep, Entries, Lit, anyJson, deepValue, headerSafe, randomString, render } from './json.js';
import {
  CAUSAL_MAX_KEY_CHARS,
  MAX_JSON_DEPTH,
  MAX_VALUE_BYTES,
  RAFT_VALUE_DEPTH,
  bodyValues,
  depthOf,
  hasNonFinite,
  headerValues,
  hlcMayBeValid,
  isObj,
  isSafeNat,
  isSocketAddressModel,
  jsonBytes,
  keyMayBeValid,
  own,
  parseClockModel,
  putBodyMayBeValid,
  requestIdMayBeValid,
  withinDepth,
  type Match,
} from './model.js';
import {
  CONTENT_TYPES,
  anyInvalidBody,
  bytesOf,
  encodePath,
  garbageCredential,
  pct,
  jsonHeaders,
  mutateBytes,
  setHeader,
  type Draft,
  type FuzzMode,
  type GenContext,
  type ModeModel,
  type NodeRef,
  type RouteGen,
  type SemanticRequest,
} from './http-gen.js';
import type { Rng } from './rng.js';

// ---------------------------------------------------------------- shared drafting tools

/** A key no seeded key can be (they start with "seed-"): decoded, it always starts with "fz". */
export function fzKey(rng: Rng): string {
  return rng.weighted<() => string>([
    [5, () => 'fz' + randomString(rng, 24)],
    [2, () => 'fz/' + randomString(rng, 10) + '/' + randomString(rng, 10)],
    [1, () => 'fz' + 'k'.repeat(rng.int(1015, 1030))],
    [1, () => 'fz' + 'é'.repeat(rng.int(505, 520))],
    [1, () => 'fz' + 'x'.repeat(rng.size(2000, 100_000))],
    [1, () => 'fz' + rng.pick(['..', '/..', '/../seed-1', '\u0000', '%', '%2F', '?', '#', ' ', '\\', '\ud800'])],
  ])();
}

/** A `/kvs/<key>` target for a key that never holds data (or an empty key). */
function kvsTarget(rng: Rng, key?: string): string {
  if (key === undefined && rng.bool(0.08)) return '/kvs/';
  return '/kvs/' + encodePath(key ?? fzKey(rng), rng);
}

function pickNode(rng: Rng, ctx: GenContext): number {
  return rng.int(0, ctx.nodes.length - 1);
}

function draft(
  rng: Rng,
  ctx: GenContext,
  method: string,
  target: string,
  body: Buffer | undefined,
  label: string,
  extra: [string, string][] = [],
  node: NodeRef = pickNode(rng, ctx),
): Draft {
  return { method, target, headers: jsonHeaders(rng, extra), body, node, label };
}

/** Applies 1 to `max` of the breakers to a copy of the entries. */
function breakEntries(
  rng: Rng,
  entries: [string, unknown][],
  breakers: readonly ((e: [string, unknown][]) => void)[],
  max = 2,
): Entries {
  const e = entries.map(([k, v]) => [k, v] as [string, unknown]);
  for (let i = rng.int(1, max); i > 0; i--) rng.pick(breakers)(e);
  if (rng.bool(0.25))
    e.push([rng.pick(['__proto__', 'constructor', 'x', 'prototype', randomString(rng, 8)]), anyJson(rng, 2)]);
  if (rng.bool(0.1)) e.reverse();
  return new Entries(e);
}

const drop = (name: string) => (e: [string, unknown][]) => {
  for (let i = e.length - 1; i >= 0; i--) if ((e[i] as [string, unknown])[0] === name) e.splice(i, 1);
};
const put = (name: string, v: () => unknown) => (e: [string, unknown][]) => {
  drop(name)(e);
  e.push([name, v()]);
};

/** The body of a write that breaks its route: mostly a broken object, sometimes not an object at all. */
function brokenBody(rng: Rng, broken: () => unknown): Buffer {
  return rng.weighted<() => Buffer>([
    [10, () => bytesOf(broken(), rng)],
    [2, () => anyInvalidBody(rng)],
    [1, () => Buffer.from(rng.pick(['null', '""', '{}', '[]', '  ', '']))],
    [1, () => mutateBytes(bytesOf(broken(), rng), rng)],
  ])();
}

const TYPO_VALUE_KEYS = ['Value', 'VALUE', 'value ', ' value', 'valu', 'values', 'v', 'val\u0000ue', 'vаlue'];

/** `{"value": V, ...}` broken for a PUT (flavours: raft's extra fields, causal's metadata). */
function brokenPut(rng: Rng, flavour: 'raft' | 'plain' | 'causal'): Buffer {
  const base: [string, unknown][] = [['value', anyJson(rng, 3)]];
  if (flavour === 'raft') {
    if (rng.bool(0.3)) base.push(['if_version', rng.int(0, 5)]);
    if (rng.bool(0.3)) base.push(['request_id', `fz-client:${rng.int(0, 99)}`]);
    if (rng.bool(0.2)) base.push(['if_value', anyJson(rng, 2)]);
  }
  if (flavour === 'causal' && rng.bool(0.5)) base.push(['causal-metadata', rng.bool() ? null : {}]);
  const breakers: ((e: [string, unknown][]) => void)[] = [
    drop('value'),
    (e) => {
      drop('value')(e);
      e.push([rng.pick(TYPO_VALUE_KEYS), anyJson(rng, 2)]);
    },
    (e) => {
      drop('value')(e);
      e.push([rng.pick(['__proto__', 'constructor']), rng.bool() ? { value: 1 } : { prototype: { value: 1 } }]);
    },
    put('value', () => deepValue(rng, anyJson(rng, 1))),
    // Over the value limit (1 MiB): rare, it is a megabyte per request.
    rng.bool(0.1) ? put('value', () => 'v'.repeat(MAX_VALUE_BYTES + rng.int(1, 1000))) : drop('value'),
  ];
  if (flavour === 'raft') {
    breakers.push(
      put('if_version', () => rng.pick<unknown>([-1, 1.5, '1', 'x', [1], { a: 1 }, new Lit('1e400'), 2 ** 53 + 2])),
      put('request_id', () =>
        rng.pick<unknown>([1, 'nocolon', ':5', 'c:', 'c:x', 'c:1234567890123456', 'c:-1', 'c:1.5', [], {}]),
      ),
      put('value', () => [1, new Lit(rng.pick(['1e400', '-1e400']))]),
      put('value', () => new Deep(rng.int(RAFT_VALUE_DEPTH + 10, MAX_JSON_DEPTH), 'array')),
      put('if_value', () => (rng.bool() ? new Lit('1e400') : deepValue(rng))),
    );
  }
  if (flavour === 'causal') {
    breakers.push(put('causal-metadata', () => brokenClock(rng)));
  }
  return brokenBody(rng, () => breakEntries(rng, base, breakers));
}

/** A vector clock that does not parse (never one that parses with a positive entry). */
function brokenClock(rng: Rng): unknown {
  return rng.pick<() => unknown>([
    () => rng.int(1, 99),
    () => [1, 2],
    () => true,
    () => randomString(rng, 10) + '{',
    () => JSON.stringify(JSON.stringify({ a: 1 })),
    () => ({ [randomString(rng, 8)]: -1 }),
    () => ({ a: 1.5 }),
    () => ({ a: '1' }),
    () => ({ a: null }),
    () => ({ a: new Lit('1e400') }),
    () => ({ a: 2 ** 53 + 2 }),
    () => ({ a: [] }),
    () => new Deep(rng.size(2, 10_000), 'object', -1),
    () => '{"a":-1}',
    () => '[1]',
    () => 'null x',
  ])();
}

function brokenWrite(rng: Rng): Buffer {
  const base: [string, unknown][] = [
    ['key', fzKey(rng)],
    ['value', anyJson(rng, 3)],
  ];
  return brokenBody(rng, () =>
    breakEntries(rng, base, [
      drop('key'),
      drop('value'),
      put('key', () => rng.pick<unknown>([1, null, [], {}, true, new Lit('1e400')])),
      put('key', () => ''),
      put('key', () => 'fz' + 'k'.repeat(1030)),
      put('value', () => deepValue(rng)),
      rng.bool(0.1) ? put('value', () => 'v'.repeat(MAX_VALUE_BYTES + 1)) : drop('value'),
      (e) => {
        drop('value')(e);
        e.push(['__proto__', { value: 1 }]);
      },
    ]),
  );
}

function consistencyQuery(rng: Rng): string {
  if (rng.bool(0.4)) return '';
  return (
    '?consistency=' +
    rng.pick([
      'stale',
      'linearizable',
      'lease',
      'STALE',
      '',
      'x',
      'stale%00',
      '%ff',
      'stale&consistency=lease',
      'linearizable ',
    ])
  );
}

/** GETs are never state-changing: they carry anything. */
function anyBodyMaybe(rng: Rng): Buffer | undefined {
  return rng.weighted<() => Buffer | undefined>([
    [6, () => undefined],
    [2, () => bytesOf(anyJson(rng, 3), rng)],
    [1, () => anyInvalidBody(rng)],
  ])();
}

function randomTarget(rng: Rng, patterns: readonly string[]): string {
  const base = rng
    .pick(patterns)
    .replace(/:[a-z]+/g, () => pct(randomString(rng, 8)))
    .replace('*', () => pct(randomString(rng, 8)));
  return rng.weighted<() => string>([
    [3, () => base],
    [2, () => '/' + pct(randomString(rng, 30))],
    [
      1,
      () =>
        '/' +
        Array.from({ length: rng.int(1, 8) }, () =>
          rng.pick(['kvs', 'chat', 'rooms', 'admin', 'auth', 'internal', 'sync', '..', '.', '', '%2e', 'x']),
        ).join('/'),
    ],
    [1, () => base + '/' + rng.pick(['x', '..', '%00', '', 'join', 'messages'])],
  ])();
}

/** A request to no particular route: random method, target, headers and body. */
function randomRoute(patterns: readonly string[]): RouteGen {
  return {
    name: 'random',
    weight: 3,
    draft(rng, ctx) {
      const method = rng.pick([
        'GET',
        'PUT',
        'POST',
        'DELETE',
        'PATCH',
        'HEAD',
        'OPTIONS',
        'PROPFIND',
        'TRACE',
        'PURGE',
      ]);
      return draft(
        rng,
        ctx,
        method,
        randomTarget(rng, patterns),
        rng.bool() ? anyInvalidBody(rng) : undefined,
        'random',
      );
    },
  };
}

/** `/health`, `/status`, `/metrics` with odd queries and methods. */
function nodeRoutes(): RouteGen {
  return {
    name: 'node',
    weight: 2,
    draft(rng, ctx) {
      const path = rng.pick(['/health', '/status', '/metrics']);
      const method = rng.bool(0.7) ? 'GET' : rng.pick(['PUT', 'POST', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']);
      const q = rng.bool(0.3) ? '?' + pct(randomString(rng, 20)) + '=' + pct(randomString(rng, 20)) : '';
      return draft(rng, ctx, method, path + q, anyBodyMaybe(rng), method);
    },
  };
}

/** The failure simulation routes: only ever with a credential that cannot verify, or a wrong method. */
function adminRoute(paths: readonly string[]): RouteGen {
  return {
    name: 'admin',
    weight: 2,
    draft(rng, ctx) {
      const path = rng.pick(paths);
      const body = rng.bool() ? bytesOf(rng.bool() ? { drop: [rng.int(1, 3)] } : anyJson(rng, 2), rng) : undefined;
      if (rng.bool(0.3))
        return draft(rng, ctx, rng.pick(['GET', 'PUT', 'DELETE', 'PATCH']), path, body, 'wrong-method');
      const d = draft(rng, ctx, 'POST', path, body, 'garbage-credential');
      for (const [k, v] of Object.entries(garbageCredential(rng, ctx, 'POST', path, body))) setHeader(d.headers, k, v);
      return d;
    },
  };
}

/** Any route with a credential that cannot verify (a request presenting one is checked everywhere). */
function credentialRoute(patterns: readonly string[]): RouteGen {
  return {
    name: 'garbage-credential',
    weight: 3,
    draft(rng, ctx) {
      const method = rng.pick(['GET', 'PUT', 'POST', 'DELETE']);
      const target = randomTarget(rng, patterns);
      const body = rng.bool() ? bytesOf(anyJson(rng, 2), rng) : undefined;
      const d = draft(rng, ctx, method, target, body, 'garbage-credential');
      for (const [k, v] of Object.entries(garbageCredential(rng, ctx, method, target, body)))
        setHeader(d.headers, k, v);
      return d;
    },
  };
}

// ---------------------------------------------------------------- raft (key-value) and chat

const NAME = /^[A-Za-z0-9_.@-]{1,64}$/;
const USERNAME = /^[A-Za-z0-9_.-]{1,32}$/;
const ROOM = /^[A-Za-z0-9_.-]{1,64}$/;

function raftPutOk(v: unknown): boolean {
  if (!isObj(v) || !withinDepth(v)) return false;
  const value = own(v, 'value');
  if (value === undefined || !raftValueOk(value)) return false;
  const iv = own(v, 'if_version');
  if (iv !== undefined && iv !== null && !isSafeNat(iv)) return false;
  const ifv = own(v, 'if_value');
  if (ifv !== undefined && !raftValueOk(ifv)) return false;
  return requestIdMayBeValid(own(v, 'request_id'));
}

/** raft refuses values nested deeper than 512 levels or holding a non-finite number (1e400). */
function raftValueOk(value: unknown): boolean {
  return depthOf(value) <= RAFT_VALUE_DEPTH + 2 && !hasNonFinite(value) && jsonBytes(value) <= MAX_VALUE_BYTES;
}

function raftDeleteOk(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return true;
  if (!isObj(v) || !withinDepth(v)) return false;
  const iv = own(v, 'if_version');
  if (iv !== undefined && iv !== null && !isSafeNat(iv)) return false;
  const ifv = own(v, 'if_value');
  if (ifv !== undefined && !raftValueOk(ifv)) return false;
  return requestIdMayBeValid(own(v, 'request_id'));
}

const TXN_FIELDS = ['compare', 'success', 'failure', 'request_id'];
const TARGETS = ['version', 'value', 'revision', 'exists'];
const OPS = ['==', '!=', '<', '>'];

function txnKeyOk(k: unknown): boolean {
  return typeof k === 'string' && keyMayBeValid(k);
}

function raftTxnOk(v: unknown): boolean {
  if (!isObj(v) || !withinDepth(v)) return false;
  if (Object.keys(v).some((k) => !TXN_FIELDS.includes(k))) return false;
  const lists: unknown[][] = [];
  for (const f of ['compare', 'success', 'failure']) {
    const x = own(v, f);
    if (x === undefined || x === null) lists.push([]);
    else if (Array.isArray(x)) lists.push(x);
    else return false;
  }
  const [compare, success, failure] = lists as [unknown[], unknown[], unknown[]];
  if (compare.length + success.length + failure.length > 1024) return false;
  if (!requestIdMayBeValid(own(v, 'request_id'))) return false;
  for (const c of compare) {
    if (!isObj(c) || !txnKeyOk(own(c, 'key'))) return false;
    const target = own(c, 'target');
    if (typeof target !== 'string' || !TARGETS.includes(target)) return false;
    const op = own(c, 'op') ?? '==';
    if (typeof op !== 'string' || !OPS.includes(op)) return false;
    const value = own(c, 'value');
    if (value === undefined || !raftValueOk(value)) return false;
  }
  for (const o of [...success, ...failure]) {
    if (!isObj(o) || !txnKeyOk(own(o, 'key'))) return false;
    const op = own(o, 'op');
    if (op === 'put') {
      const value = own(o, 'value');
      if (value === undefined || !raftValueOk(value)) return false;
    } else if (op !== 'delete' && op !== 'get') return false;
  }
  return true;
}

function passwordBodyOk(b: Record<string, unknown>): boolean {
  if (b.no_password === true && b.password === undefined) return true;
  return typeof b.password === 'string' && b.password.length >= 8 && b.password.length <= 256;
}

function bearerTokens(headers: readonly (readonly [string, string])[]): string[] {
  const out: string[] = [];
  for (const v of headerValues(headers, 'authorization')) {
    const m = /^Bearer ([A-Za-z0-9._~+/=-]{1,512})$/i.exec(v.trim());
    if (m !== null) out.push(m[1] as string);
  }
  return out;
}

function keyOf(m: Match): string {
  return m.params['*'] ?? '';
}

/**
 * Methods a path with routes serves: its own, the others of methodNotAllowed's 405 answers, and HEAD for GET.
 * Any other method finds no route (a 404, with the body parsed first).
 */
const ROUTED = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH'];

/** raft and chat: a request that says it was forwarded by a node must prove it (whatever the route). */
function forwardedNeedsCredential(
  _method: string,
  _pattern: string,
  headers: readonly (readonly [string, string])[],
): boolean {
  return headerValues(headers, 'x-quorumkv-forwarded').length > 0;
}

/** Shared by raft and chat: the credential rules in front of every route. */
function refusedByPeerAuth(r: SemanticRequest): boolean {
  if (r.credential === 'garbage') return true;
  const forwarded = headerValues(r.headers, 'x-quorumkv-forwarded').length > 0;
  return forwarded && r.credential === 'none';
}

function raftRisk(r: SemanticRequest): string | undefined {
  if (refusedByPeerAuth(r)) return undefined;
  const values = bodyValues(r.bodies);
  const some = (f: (v: unknown) => boolean) => values.some(f);
  for (const m of r.matches) {
    const p = m.pattern;
    const name = m.params.name ?? '';
    const role = m.params.role ?? '';
    switch (`${r.method} ${p}`) {
      case 'PUT /kvs/*':
        if (keyMayBeValid(keyOf(m)) && some(raftPutOk)) return 'a valid put';
        break;
      case 'DELETE /kvs/*':
        if (keyMayBeValid(keyOf(m)) && some(raftDeleteOk)) return 'a valid delete';
        break;
      case 'POST /txn':
        if (some(raftTxnOk)) return 'a valid transaction';
        break;
      case 'POST /admin/fail':
      case 'POST /admin/recover':
      case 'POST /admin/faults':
      case 'POST /auth/enable':
      case 'POST /auth/disable':
        return 'an admin or auth switch';
      case 'POST /auth/authenticate':
        if (some((v) => isObj(v) && typeof v.name === 'string' && typeof v.password === 'string')) return 'a login';
        break;
      case 'DELETE /auth/authenticate':
        if (bearerTokens(r.headers).length > 0) return 'a logout';
        break;
      case 'POST /auth/users':
        if (some((v) => isObj(v) && typeof v.name === 'string' && NAME.test(v.name) && passwordBodyOk(v)))
          return 'a user';
        break;
      case 'DELETE /auth/users/:name':
      case 'DELETE /auth/roles/:name':
        if (NAME.test(name)) return 'a deletion';
        break;
      case 'PUT /auth/users/:name/password':
        if (NAME.test(name) && some((v) => isObj(v) && passwordBodyOk(v))) return 'a password change';
        break;
      case 'POST /auth/users/:name/roles':
        if (NAME.test(name) && some((v) => isObj(v) && typeof v.role === 'string' && NAME.test(v.role)))
          return 'a grant';
        break;
      case 'DELETE /auth/users/:name/roles/:role':
        if (NAME.test(name) && NAME.test(role)) return 'a revoke';
        break;
      case 'POST /auth/roles':
        if (some((v) => isObj(v) && typeof v.name === 'string' && NAME.test(v.name))) return 'a role';
        break;
      case 'PUT /auth/roles/:name/permissions':
        if (
          NAME.test(name) &&
          some(
            (v) =>
              isObj(v) &&
              typeof v.prefix === 'string' &&
              Buffer.byteLength(v.prefix) <= 1024 &&
              (v.read === undefined || typeof v.read === 'boolean') &&
              (v.write === undefined || typeof v.write === 'boolean') &&
              (v.read === true || v.write === true),
          )
        )
          return 'a permission';
        break;
      case 'DELETE /auth/roles/:name/permissions':
        if (NAME.test(name) && m.query.has('prefix')) return 'a permission revoke';
        break;
    }
  }
  return undefined;
}

const RAFT_PATTERNS = [
  '/kvs/*',
  '/kvs',
  '/txn',
  '/health',
  '/status',
  '/metrics',
  '/admin/fail',
  '/admin/recover',
  '/admin/faults',
  '/auth/status',
  '/auth/enable',
  '/auth/disable',
  '/auth/authenticate',
  '/auth/users',
  '/auth/users/:name',
  '/auth/users/:name/password',
  '/auth/users/:name/roles',
  '/auth/users/:name/roles/:role',
  '/auth/roles',
  '/auth/roles/:name',
  '/auth/roles/:name/permissions',
];

function raftRefusing(method: string, pattern: string): boolean {
  if (method === 'GET' || method === 'HEAD') return false;
  if (pattern === '/kvs/*') return method === 'PUT' || method === 'DELETE';
  if (pattern === '/txn' || pattern.startsWith('/admin/')) return method === 'POST';
  if (pattern.startsWith('/auth/')) return ['POST', 'PUT', 'DELETE'].includes(method);
  return false;
}

function brokenTxn(rng: Rng): Buffer {
  const cmp = () => ({ key: fzKey(rng), target: rng.pick(TARGETS), op: rng.pick(OPS), value: rng.int(0, 3) });
  const op = () =>
    rng.pick([
      { op: 'put', key: fzKey(rng), value: anyJson(rng, 2) },
      { op: 'delete', key: fzKey(rng) },
      { op: 'get', key: fzKey(rng) },
    ]);
  const list = (f: () => unknown) => Array.from({ length: rng.size(0, 4) }, f);
  const base: [string, unknown][] = [
    ['compare', list(cmp)],
    ['success', list(op)],
    ['failure', list(op)],
  ];
  if (rng.bool(0.3)) base.push(['request_id', 'fz-client:1']);
  const brokenItem = () =>
    rng.pick<() => unknown>([
      () => ({ ...cmp(), target: rng.pick(['Version', '', 'size', 1, null]) }),
      () => ({ ...cmp(), op: rng.pick(['=', '<=', '>=', '===', 1, 'eq']) }),
      () => ({ target: 'version', value: 1 }),
      () => ({ key: fzKey(rng), target: 'exists' }),
      () => ({ key: '', target: 'version', value: 0 }),
      () => ({ key: 1, target: 'version', value: 0 }),
      () => ({ key: fzKey(rng), target: 'value', value: deepValue(rng) }),
      () => ({ key: fzKey(rng), target: 'value', value: new Lit('1e400') }),
      () => anyJson(rng, 1),
    ])();
  const brokenOp = () =>
    rng.pick<() => unknown>([
      () => ({ op: 'put', key: fzKey(rng) }),
      () => ({ op: rng.pick(['PUT', 'set', 'del', '', null, 1]), key: fzKey(rng), value: 1 }),
      () => ({ op: 'delete' }),
      () => ({ op: 'get', key: 'fz' + 'k'.repeat(1030) }),
      () => ({ op: 'put', key: fzKey(rng), value: deepValue(rng) }),
      () => ({ op: 'put', key: fzKey(rng), value: new Lit('-1e400') }),
      () => [1, 2],
      () => 'put',
    ])();
  const withBroken = (f: string, item: () => unknown) => (e: [string, unknown][]) => {
    const i = e.findIndex(([k]) => k === f);
    const arr =
      i < 0
        ? []
        : Array.isArray((e[i] as [string, unknown])[1])
          ? [...((e[i] as [string, unknown])[1] as unknown[])]
          : [];
    arr.splice(rng.int(0, arr.length), 0, item());
    drop(f)(e);
    e.push([f, arr]);
  };
  return brokenBody(rng, () =>
    breakEntries(rng, base, [
      (e) =>
        e.push([
          rng.pick(['Compare', 'ops', 'then', 'else', 'requestId', '__proto__', 'constructor', 'value', 'key']),
          anyJson(rng, 1),
        ]),
      put(rng.pick(['compare', 'success', 'failure']), () => rng.pick<unknown>([{}, 'x', 1, true, { 0: {} }])),
      withBroken('compare', brokenItem),
      withBroken(rng.pick(['success', 'failure']), brokenOp),
      put('request_id', () => rng.pick([1, 'x', 'c:', ':1', 'c:1.5', []])),
      put('success', () => Array.from({ length: 1025 }, () => ({ op: 'get', key: 'fz' }))),
    ]),
  );
}

function raftAuthRoute(): RouteGen {
  return {
    name: 'auth',
    weight: 8,
    draft(rng, ctx) {
      const users = ctx.authNames?.users ?? ['seed-user'];
      const roles = ctx.authNames?.roles ?? ['seed-role'];
      const badName = () =>
        rng.pick(['', 'a b', 'a:b', 'x'.repeat(65), 'é', 'a/b', '%', '\u0000', '..', randomString(rng, 10) + '!']);
      const anyName = () => (rng.bool(0.5) ? badName() : rng.pick([...users, ...roles, 'nobody']));
      const enc = (s: string) => encodePath(s, rng);
      const pick = rng.int(0, 11);
      switch (pick) {
        case 0:
          return draft(
            rng,
            ctx,
            'GET',
            rng.pick([
              '/auth/status',
              '/auth/users',
              '/auth/roles',
              `/auth/users/${enc(anyName())}`,
              `/auth/roles/${enc(anyName())}`,
            ]),
            anyBodyMaybe(rng),
            'read',
          );
        case 1:
          return draft(
            rng,
            ctx,
            'POST',
            '/auth/users',
            brokenBody(rng, () =>
              breakEntries(
                rng,
                [
                  ['name', 'fz-user'],
                  ['password', 'fz-password-1'],
                ],
                [
                  put('name', badName),
                  put('name', () => rng.pick<unknown>([1, null, [], {}])),
                  put('password', () => rng.pick<unknown>(['short', 'x'.repeat(257), 12345678, null, []])),
                  drop('password'),
                  drop('name'),
                  put('no_password', () => rng.pick<unknown>(['true', 1, false])),
                ],
              ),
            ),
            'add user',
          );
        case 2:
          return draft(
            rng,
            ctx,
            'PUT',
            `/auth/users/${enc(anyName())}/password`,
            brokenBody(rng, () =>
              breakEntries(
                rng,
                [['password', 'fz-password-1']],
                [put('password', () => rng.pick<unknown>(['short', 'x'.repeat(257), 1, null])), drop('password')],
              ),
            ),
            'password',
          );
        case 3:
          return draft(
            rng,
            ctx,
            'POST',
            `/auth/users/${enc(anyName())}/roles`,
            brokenBody(rng, () =>
              breakEntries(
                rng,
                [['role', 'seed-role']],
                [put('role', badName), put('role', () => rng.pick<unknown>([1, null, []])), drop('role')],
              ),
            ),
            'grant',
          );
        case 4:
          return draft(rng, ctx, 'DELETE', `/auth/users/${enc(badName())}`, anyBodyMaybe(rng), 'delete user');
        case 5:
          return draft(
            rng,
            ctx,
            'DELETE',
            `/auth/users/${enc(rng.bool() ? badName() : anyName())}/roles/${enc(badName())}`,
            undefined,
            'revoke',
          );
        case 6:
          return draft(
            rng,
            ctx,
            'POST',
            '/auth/roles',
            brokenBody(rng, () =>
              breakEntries(
                rng,
                [['name', 'fz-role']],
                [put('name', badName), put('name', () => rng.pick<unknown>([1, null, []])), drop('name')],
              ),
            ),
            'add role',
          );
        case 7:
          return draft(rng, ctx, 'DELETE', `/auth/roles/${enc(badName())}`, undefined, 'delete role');
        case 8:
          return draft(
            rng,
            ctx,
            'PUT',
            `/auth/roles/${enc(anyName())}/permissions`,
            brokenBody(rng, () =>
              breakEntries(
                rng,
                [
                  ['prefix', 'fz/'],
                  ['read', true],
                ],
                [
                  put('prefix', () => rng.pick<unknown>([1, null, [], {}])),
                  drop('prefix'),
                  put('read', () => rng.pick<unknown>(['true', 1, null])),
                  (e) => {
                    drop('read')(e);
                    drop('write')(e);
                  },
                  put('prefix', () => 'p'.repeat(1030)),
                ],
              ),
            ),
            'permission',
          );
        case 9:
          return draft(
            rng,
            ctx,
            'DELETE',
            `/auth/roles/${enc(rng.bool() ? badName() : anyName())}/permissions${rng.bool() ? '' : '?x=1'}`,
            undefined,
            'permission revoke',
          );
        case 10:
          return draft(
            rng,
            ctx,
            'POST',
            '/auth/authenticate',
            brokenBody(rng, () =>
              breakEntries(
                rng,
                [
                  ['name', 'seed-user'],
                  ['password', 'wrong-password'],
                ],
                [
                  drop('name'),
                  drop('password'),
                  put('name', () => rng.pick<unknown>([1, null, []])),
                  put('password', () => rng.pick<unknown>([1, null, {}])),
                ],
              ),
            ),
            'login',
          );
        default:
          if (rng.bool()) {
            const auth = rng.pick(['Basic eDp5', 'Bearer', 'Token x', 'Bearer a b', '']);
            return draft(rng, ctx, 'DELETE', '/auth/authenticate', undefined, 'no token', [['authorization', auth]]);
          }
          return draft(
            rng,
            ctx,
            rng.pick(['GET', 'PUT', 'PATCH']),
            rng.pick(['/auth/enable', '/auth/disable']),
            undefined,
            'wrong method',
          );
      }
    },
  };
}

/** Requests claiming to come from another node (`x-quorumkv-forwarded`): no, a garbage, or a valid signature. */
function forwardedRoute(writes: () => (rng: Rng) => { method: string; target: string; body: Buffer }): RouteGen {
  return {
    name: 'forwarded',
    weight: 8,
    draft(rng, ctx) {
      const w = writes()(rng);
      const kind = rng.weighted<'none' | 'garbage' | 'valid'>([
        [3, 'none'],
        [3, 'garbage'],
        [4, 'valid'],
      ]);
      const from = String(rng.pick([1, 2, 3, 0, 99, -1, 'x']));
      const d = draft(rng, ctx, w.method, w.target, w.body, kind, [['x-quorumkv-forwarded', from]]);
      if (rng.bool(0.2))
        d.headers.push(['x-quorumkv-user', rng.pick(['root', 'seed-user', '', headerSafe(randomString(rng, 10))])]);
      if (kind === 'garbage') {
        for (const [k, v] of Object.entries(garbageCredential(rng, ctx, w.method, w.target, w.body)))
          setHeader(d.headers, k, v);
      } else if (kind === 'valid') {
        // Validly signed requests go to the leader: a follower answers a forwarded request it would have to
        // forward again with 503 "Not leader" (the sender retries), which is not what is tested here.
        d.node = 'leader';
        d.signValid = true;
        d.replay = rng.bool(0.1);
      }
      return d;
    },
  };
}

function raftWrites(rng: Rng): { method: string; target: string; body: Buffer } {
  return rng.pick([
    () => ({ method: 'PUT', target: kvsTarget(rng), body: brokenPut(rng, 'raft') }),
    () => ({ method: 'DELETE', target: kvsTarget(rng), body: brokenDelete(rng) }),
    () => ({ method: 'POST', target: '/txn', body: brokenTxn(rng) }),
  ])();
}

function brokenDelete(rng: Rng): Buffer {
  return brokenBody(rng, () =>
    breakEntries(
      rng,
      [['if_version', 1]],
      [
        put('if_version', () => rng.pick<unknown>([-1, 'x', 1.5, [], {}, new Lit('1e400')])),
        put('request_id', () => rng.pick<unknown>([5, 'x', 'c:', ':1'])),
        put('if_value', () => (rng.bool() ? new Lit('1e400') : deepValue(rng))),
      ],
    ),
  );
}

export function raftModel(): ModeModel {
  const routes: RouteGen[] = [
    {
      name: 'get',
      weight: 8,
      draft(rng, ctx) {
        const key = rng.bool(0.5) && ctx.seededKeys.length > 0 ? rng.pick(ctx.seededKeys) : fzKey(rng);
        return draft(rng, ctx, 'GET', kvsTarget(rng, key) + consistencyQuery(rng), anyBodyMaybe(rng), 'get');
      },
    },
    {
      name: 'list',
      weight: 5,
      draft(rng, ctx) {
        const q: string[] = [];
        if (rng.bool(0.7)) q.push('prefix=' + encodePath(rng.bool() ? 'seed-' : randomString(rng, 10), rng));
        if (rng.bool(0.5))
          q.push(
            'limit=' + rng.pick(['1', '0', '-1', '10001', '10000', 'x', '1.5', '', '1e2', '99999999999999999999']),
          );
        if (rng.bool(0.3)) q.push('after=' + encodePath(randomString(rng, 10), rng));
        if (rng.bool(0.3)) q.push(consistencyQuery(rng).slice(1));
        return draft(rng, ctx, 'GET', '/kvs' + (q.length > 0 ? '?' + q.join('&') : ''), anyBodyMaybe(rng), 'list');
      },
    },
    {
      name: 'put',
      weight: 14,
      draft: (rng, ctx) => draft(rng, ctx, 'PUT', kvsTarget(rng), brokenPut(rng, 'raft'), 'broken body'),
    },
    {
      name: 'delete',
      weight: 5,
      draft: (rng, ctx) => draft(rng, ctx, 'DELETE', kvsTarget(rng), brokenDelete(rng), 'broken body'),
    },
    { name: 'txn', weight: 10, draft: (rng, ctx) => draft(rng, ctx, 'POST', '/txn', brokenTxn(rng), 'broken body') },
    raftAuthRoute(),
    forwardedRoute(() => raftWrites),
    nodeRoutes(),
    adminRoute(['/admin/fail', '/admin/recover', '/admin/faults']),
    credentialRoute(RAFT_PATTERNS),
    randomRoute(RAFT_PATTERNS),
  ];
  return {
    mode: 'raft',
    patterns: RAFT_PATTERNS,
    risk: (r) => raftRisk(r),
    refusing: raftRefusing,
    needsCredential: forwardedNeedsCredential,
    routes,
  };
}

// ---- chat

const CHAT_PATTERNS = [
  '/chat/users',
  '/chat/sessions',
  '/chat/rooms',
  '/chat/rooms/:room/join',
  '/chat/rooms/:room/messages',
  '/chat/rooms/:room/stream',
  '/health',
  '/status',
  '/metrics',
  '/admin/fail',
  '/admin/recover',
  '/admin/faults',
];

function textOk(v: unknown): boolean {
  if (!isObj(v) || !withinDepth(v) || typeof v.text !== 'string') return false;
  if (v.text.trim().length === 0 || Buffer.byteLength(v.text, 'utf8') > 4096) return false;
  const rid = v.request_id;
  return rid === undefined || (typeof rid === 'string' && rid.length >= 1 && rid.length <= 128);
}

function chatRisk(r: SemanticRequest, ctx: GenContext): string | undefined {
  if (refusedByPeerAuth(r)) return undefined;
  const chat = ctx.chat;
  if (chat === undefined) return 'no chat context';
  const values = bodyValues(r.bodies);
  const some = (f: (v: unknown) => boolean) => values.some(f);
  const users = new Set<string>();
  for (const t of bearerTokens(r.headers)) {
    for (const [u, tok] of Object.entries(chat.tokens)) if (tok === t) users.add(u);
  }
  // Own properties only: a room named "constructor" does not exist because objects have one.
  const roomExists = (room: string) => Object.prototype.hasOwnProperty.call(chat.rooms, room);
  const member = (room: string) =>
    roomExists(room) && [...users].some((u) => (chat.rooms[room] as readonly string[]).includes(u));
  for (const m of r.matches) {
    const room = m.params.room ?? '';
    switch (`${r.method} ${m.pattern}`) {
      case 'POST /chat/users':
        if (
          some(
            (v) =>
              isObj(v) &&
              typeof v.username === 'string' &&
              USERNAME.test(v.username) &&
              !chat.users.includes(v.username) &&
              typeof v.password === 'string' &&
              v.password.length >= 8 &&
              v.password.length <= 256,
          )
        )
          return 'a registration';
        break;
      case 'DELETE /chat/sessions':
        if (users.size > 0) return 'a logout';
        break;
      case 'POST /chat/rooms':
        if (
          users.size > 0 &&
          some((v) => isObj(v) && typeof v.name === 'string' && ROOM.test(v.name) && !roomExists(v.name))
        )
          return 'a new room';
        break;
      case 'POST /chat/rooms/:room/join':
        if (users.size > 0 && roomExists(room)) return 'a join';
        break;
      case 'POST /chat/rooms/:room/messages':
        if (member(room) && some(textOk)) return 'a post';
        break;
      case 'GET /chat/rooms/:room/stream':
      case 'HEAD /chat/rooms/:room/stream': {
        const last = headerValues(r.headers, 'last-event-id');
        const lastOk = last.length === 0 || last.some((l) => l.trim() === '' || /^\d{1,15}$/.test(l.trim()));
        if (member(room) && lastOk) return 'a live stream';
        break;
      }
      case 'POST /admin/fail':
      case 'POST /admin/recover':
      case 'POST /admin/faults':
        return 'an admin switch';
    }
  }
  return undefined;
}

function chatRefusing(method: string, pattern: string): boolean {
  if (pattern === '/chat/rooms/:room/stream') return method === 'GET';
  if (method === 'GET' || method === 'HEAD') return false;
  if (pattern.startsWith('/admin/')) return method === 'POST';
  if (pattern === '/chat/sessions') return method === 'POST' || method === 'DELETE';
  return pattern.startsWith('/chat/') && method === 'POST';
}

function garbageToken(rng: Rng): string {
  return rng.pick([
    'Bearer ' + rng.bytes(32).toString('base64url'),
    'Bearer ' + rng.bytes(rng.int(1, 300)).toString('hex'),
    'Bearer ',
    'Bearer a b',
    'bearer ' + rng.bytes(16).toString('hex'),
    'Basic ' + Buffer.from('alice:x').toString('base64'),
    'Token ' + rng.bytes(8).toString('hex'),
    'Bearer ' + 'A'.repeat(513),
    'Bearer ' + headerSafe(randomString(rng, 20)),
    '',
  ]);
}

function chatAuth(rng: Rng, ctx: GenContext, allowReal: boolean): { header: [string, string][]; user?: string } {
  const tokens = ctx.chat?.tokens ?? {};
  const r = rng.int(0, 9);
  if (r === 0) return { header: [] };
  if (allowReal && r >= 6 && Object.keys(tokens).length > 0) {
    const user = rng.pick(Object.keys(tokens));
    return { header: [['authorization', `Bearer ${tokens[user] as string}`]], user };
  }
  return { header: [['authorization', garbageToken(rng)]] };
}

function roomName(rng: Rng, ctx: GenContext, existing: number): string {
  const rooms = Object.keys(ctx.chat?.rooms ?? {});
  if (rooms.length > 0 && rng.bool(existing)) return rng.pick(rooms);
  return rng.pick([
    'fz-room',
    'fz.' + rng.int(0, 999),
    'a b',
    'x'.repeat(65),
    '',
    '..',
    'é',
    '%00',
    randomString(rng, 12),
  ]);
}

export function chatModel(): ModeModel {
  const enc = (s: string, rng: Rng) => encodePath(s, rng);
  const routes: RouteGen[] = [
    {
      name: 'register',
      weight: 6,
      draft(rng, ctx) {
        const users = ctx.chat?.users ?? [];
        const body = brokenBody(rng, () =>
          breakEntries(
            rng,
            [
              ['username', rng.bool(0.3) && users.length > 0 ? rng.pick(users) : 'fz-user'],
              ['password', 'fz-password-1'],
            ],
            [
              put('username', () =>
                rng.pick<unknown>([
                  '',
                  'a b',
                  'x'.repeat(33),
                  'é',
                  1,
                  null,
                  [],
                  'a:b',
                  'x'.repeat(rng.size(100, 60_000)),
                ]),
              ),
              put('password', () => rng.pick<unknown>(['short', 'x'.repeat(257), 1, null, {}, ''])),
              drop('username'),
              drop('password'),
            ],
          ),
        );
        return draft(rng, ctx, 'POST', '/chat/users', body, 'broken registration');
      },
    },
    {
      name: 'login',
      weight: 5,
      draft(rng, ctx) {
        const users = ctx.chat?.users ?? ['alice'];
        const body = rng.weighted<() => Buffer>([
          // A wrong password for a known name (rate-limited after a few) — the cheap way to test it.
          [2, () => bytesOf({ username: rng.pick([...users, 'nobody']), password: 'wrong-' + rng.int(0, 9999) }, rng)],
          // Names and passwords that no account can have; long passwords are refused before any hashing.
          [
            3,
            () =>
              bytesOf(
                {
                  username: randomString(rng, rng.bool(0.2) ? 60_000 : 40),
                  password: 'p'.repeat(257 + rng.size(0, 60_000)),
                },
                rng,
              ),
          ],
          [
            4,
            () =>
              brokenBody(rng, () =>
                breakEntries(
                  rng,
                  [
                    ['username', 'alice'],
                    ['password', 'x'],
                  ],
                  [
                    drop('username'),
                    drop('password'),
                    put('username', () => rng.pick<unknown>([1, null, [], {}])),
                    put('password', () => rng.pick<unknown>([1, null, [], {}])),
                  ],
                ),
              ),
          ],
        ])();
        return draft(rng, ctx, 'POST', '/chat/sessions', body, 'login');
      },
    },
    {
      name: 'logout',
      weight: 3,
      draft(rng, ctx) {
        return draft(
          rng,
          ctx,
          'DELETE',
          '/chat/sessions',
          anyBodyMaybe(rng),
          'garbage token',
          chatAuth(rng, ctx, false).header,
        );
      },
    },
    {
      name: 'create-room',
      weight: 6,
      draft(rng, ctx) {
        const a = chatAuth(rng, ctx, true);
        const body = brokenBody(rng, () =>
          breakEntries(
            rng,
            [['name', roomName(rng, ctx, 0.5)]],
            [
              put('name', () => roomName(rng, ctx, 0.6)),
              put('name', () => rng.pick<unknown>([1, null, [], {}])),
              drop('name'),
            ],
          ),
        );
        return draft(
          rng,
          ctx,
          'POST',
          '/chat/rooms',
          body,
          a.user === undefined ? 'garbage token' : 'real token',
          a.header,
        );
      },
    },
    {
      name: 'list-rooms',
      weight: 4,
      draft(rng, ctx) {
        const a = chatAuth(rng, ctx, true);
        return draft(
          rng,
          ctx,
          'GET',
          '/chat/rooms' + (rng.bool() ? '?consistency=' + rng.pick(['stale', 'linearizable', 'lease', 'x', '']) : ''),
          anyBodyMaybe(rng),
          'list',
          a.header,
        );
      },
    },
    {
      name: 'join',
      weight: 5,
      draft(rng, ctx) {
        const a = chatAuth(rng, ctx, true);
        return draft(
          rng,
          ctx,
          'POST',
          `/chat/rooms/${enc(roomName(rng, ctx, 0.4), rng)}/join`,
          anyBodyMaybe(rng),
          a.user === undefined ? 'garbage token' : 'real token',
          a.header,
        );
      },
    },
    {
      name: 'post',
      weight: 8,
      draft(rng, ctx) {
        const a = chatAuth(rng, ctx, true);
        const body = brokenBody(rng, () =>
          breakEntries(
            rng,
            [['text', 'hello ' + randomString(rng, 20)]],
            [
              put('text', () =>
                rng.pick<unknown>(['', '   ', '\n\t', 1, null, [], {}, 't'.repeat(4097), '字'.repeat(1366)]),
              ),
              drop('text'),
              put('request_id', () => rng.pick<unknown>(['', 'r'.repeat(129), 1, [], {}, null])),
              put('text', () => deepValue(rng)),
            ],
          ),
        );
        return draft(
          rng,
          ctx,
          'POST',
          `/chat/rooms/${enc(roomName(rng, ctx, 0.7), rng)}/messages`,
          body,
          a.user === undefined ? 'garbage token' : 'real token',
          a.header,
        );
      },
    },
    {
      name: 'read-messages',
      weight: 5,
      draft(rng, ctx) {
        const a = chatAuth(rng, ctx, true);
        const q = rng.pick([
          '',
          '?after=0',
          '?after=-1',
          '?after=x',
          '?limit=0',
          '?limit=1001',
          '?limit=1&after=99999999999999999999',
          '?consistency=stale',
          '?consistency=x',
          '?after=1.5',
        ]);
        return draft(
          rng,
          ctx,
          'GET',
          `/chat/rooms/${enc(roomName(rng, ctx, 0.7), rng)}/messages${q}`,
          anyBodyMaybe(rng),
          'read',
          a.header,
        );
      },
    },
    {
      name: 'stream',
      weight: 4,
      draft(rng, ctx) {
        const a = chatAuth(rng, ctx, true);
        const h: [string, string][] = [...a.header];
        if (rng.bool(0.5))
          h.push([
            'last-event-id',
            rng.pick([
              'x',
              '-1',
              '1.5',
              '1234567890123456',
              '1 2',
              'NaN',
              '0x1',
              headerSafe(randomString(rng, 10)) + 'z',
            ]),
          ]);
        const q = rng.pick(['', '?after=x', '?after=-1', '?after=0']);
        return draft(
          rng,
          ctx,
          'GET',
          `/chat/rooms/${enc(roomName(rng, ctx, 0.6), rng)}/stream${q}`,
          undefined,
          a.user === undefined ? 'garbage token' : 'real token',
          h,
        );
      },
    },
    forwardedRoute(() => (rng: Rng) => {
      const room = rng.pick(['general', 'fz-room', 'a b']);
      return rng.pick([
        () => ({
          method: 'POST',
          target: '/chat/users',
          body: brokenBody(
            rng,
            () =>
              new Entries([
                ['username', 'a b'],
                ['password', 'x'],
              ]),
          ),
        }),
        () => ({
          method: 'POST',
          target: `/chat/rooms/${pct(room)}/messages`,
          body: brokenBody(rng, () => new Entries([['text', '']])),
        }),
        () => ({ method: 'POST', target: '/chat/rooms', body: brokenBody(rng, () => new Entries([['name', 'a b']])) }),
      ])();
    }),
    nodeRoutes(),
    adminRoute(['/admin/fail', '/admin/recover', '/admin/faults']),
    credentialRoute(CHAT_PATTERNS),
    randomRoute(CHAT_PATTERNS),
  ];
  return {
    mode: 'chat',
    patterns: CHAT_PATTERNS,
    risk: chatRisk,
    refusing: chatRefusing,
    needsCredential: forwardedNeedsCredential,
    routes,
  };
}

// ---------------------------------------------------------------- quorum and eventual

function writeBodyOk(v: unknown): boolean {
  return isObj(v) && typeof v.key === 'string' && keyMayBeValid(v.key) && putBodyMayBeValid(v);
}

function wireRecordOk(x: unknown): boolean {
  if (!isObj(x) || typeof x.key !== 'string' || x.key.length === 0) return false;
  if (typeof x.version !== 'number' || !Number.isSafeInteger(x.version) || x.version < 1) return false;
  return x.deleted === true || x.value !== undefined;
}

function quorumReplicateOk(v: unknown): boolean {
  if (!withinDepth(v)) return false;
  if (isObj(v) && Array.isArray(v.entries)) return v.entries.every(wireRecordOk);
  return wireRecordOk(v);
}

function wireEntryOk(x: unknown): boolean {
  if (!isObj(x) || typeof x.key !== 'string' || x.key.length === 0 || !hlcMayBeValid(x.ts)) return false;
  return x.deleted === true || x.value !== undefined;
}

const QUORUM_PATTERNS = [
  '/write',
  '/read',
  '/data',
  '/replicate',
  '/kvs/*',
  '/health',
  '/status',
  '/metrics',
  '/admin/fail',
  '/admin/recover',
];
const EVENTUAL_PATTERNS = [...QUORUM_PATTERNS, '/sync/digest', '/sync/keys'];

function quorumRisk(r: SemanticRequest, ctx: GenContext): string | undefined {
  if (r.credential === 'garbage') return undefined;
  const leader = r.node?.role === 'leader';
  const values = bodyValues(r.bodies);
  const some = (f: (v: unknown) => boolean) => values.some(f);
  for (const m of r.matches) {
    switch (`${r.method} ${m.pattern}`) {
      case 'POST /write':
        if (leader && some(writeBodyOk)) return 'a valid write';
        break;
      case 'PUT /kvs/*':
        if (leader && keyMayBeValid(keyOf(m)) && some(putBodyMayBeValid)) return 'a valid put';
        break;
      case 'DELETE /kvs/*':
        if (leader && ctx.seededKeys.includes(keyOf(m))) return 'a delete of a key that exists';
        break;
      case 'POST /replicate':
        if (!leader && r.credential === 'valid' && some(quorumReplicateOk)) return 'a valid replication';
        break;
      case 'POST /admin/fail':
      case 'POST /admin/recover':
        return 'an admin switch';
    }
  }
  return undefined;
}

function eventualRisk(r: SemanticRequest, ctx: GenContext): string | undefined {
  if (r.credential === 'garbage') return undefined;
  const values = bodyValues(r.bodies);
  const some = (f: (v: unknown) => boolean) => values.some(f);
  const field = (v: unknown, f: string): unknown => (isObj(v) ? v[f] : undefined);
  for (const m of r.matches) {
    const internal = r.credential === 'valid';
    switch (`${r.method} ${m.pattern}`) {
      case 'POST /write':
        if (some(writeBodyOk)) return 'a valid write';
        break;
      case 'PUT /kvs/*':
        if (keyMayBeValid(keyOf(m)) && some(putBodyMayBeValid)) return 'a valid put';
        break;
      case 'DELETE /kvs/*':
        if (ctx.seededKeys.includes(keyOf(m))) return 'a delete of a key that exists';
        break;
      case 'POST /replicate':
        if (
          internal &&
          some(
            (v) =>
              withinDepth(v) &&
              Array.isArray(field(v, 'entries')) &&
              (field(v, 'entries') as unknown[]).every(wireEntryOk),
          )
        )
          return 'a valid replication';
        break;
      case 'POST /sync/digest':
        if (
          internal &&
          some((v) => {
            const b = field(v, 'buckets');
            return Array.isArray(b) && b.length === 256 && b.every((x) => typeof x === 'string');
          })
        )
          return 'a valid digest';
        break;
      case 'POST /sync/keys':
        if (
          internal &&
          some((v) => {
            const b = field(v, 'buckets');
            const s = field(v, 'summary');
            return (
              Array.isArray(b) &&
              Array.isArray(s) &&
              s.every((it) => Array.isArray(it) && typeof it[0] === 'string' && hlcMayBeValid(it[1]))
            );
          })
        )
          return 'a valid key summary';
        break;
      case 'POST /admin/fail':
      case 'POST /admin/recover':
        return 'an admin switch';
    }
  }
  return undefined;
}

function quorumRefusing(method: string, pattern: string): boolean {
  if (pattern === '/kvs/*') return method === 'PUT' || method === 'DELETE';
  return (
    method === 'POST' &&
    ['/write', '/replicate', '/sync/digest', '/sync/keys', '/admin/fail', '/admin/recover'].includes(pattern)
  );
}

function brokenRecord(rng: Rng, ts: boolean): unknown {
  const base: [string, unknown][] = [
    ['key', fzKey(rng)],
    ['value', anyJson(rng, 2)],
  ];
  if (ts) base.push(['ts', { wall: Date.now(), logical: 0, node: 'fz' }]);
  else base.push(['version', rng.int(1, 10)]);
  const breakers: ((e: [string, unknown][]) => void)[] = [
    drop('key'),
    put('key', () => rng.pick<unknown>(['', 1, null, [], {}])),
    (e) => {
      drop('value')(e);
      if (rng.bool()) e.push(['deleted', rng.pick<unknown>(['true', 1, null, false])]);
    },
  ];
  if (ts) {
    breakers.push(
      drop('ts'),
      put('ts', () =>
        rng.pick<unknown>([
          null,
          1,
          'now',
          {},
          { wall: -1, logical: 0, node: 'fz' },
          { wall: 1.5, logical: 0, node: 'fz' },
          { wall: 1, logical: -1, node: 'fz' },
          { wall: 1, logical: 0, node: '' },
          { wall: 1, logical: 0 },
          { wall: new Lit('1e400'), logical: 0, node: 'fz' },
          { wall: 2 ** 53 + 2, logical: 0, node: 'fz' },
        ]),
      ),
    );
  } else {
    breakers.push(
      drop('version'),
      put('version', () => rng.pick<unknown>([0, -1, 1.5, '1', null, 2 ** 53 + 2, new Lit('1e400')])),
    );
  }
  return breakEntries(rng, base, breakers);
}

/** A replication body with at least one broken record (a batch is refused whole). */
function brokenReplicate(rng: Rng, ts: boolean): Buffer {
  return brokenBody(rng, () => {
    if (!ts && rng.bool(0.3)) return brokenRecord(rng, false);
    const good = () =>
      ts
        ? { key: fzKey(rng), value: 1, ts: { wall: 1, logical: 0, node: 'fz' } }
        : { key: fzKey(rng), value: 1, version: 1 };
    const entries: unknown[] = Array.from({ length: rng.size(0, 5) }, good);
    entries.splice(rng.int(0, entries.length), 0, brokenRecord(rng, ts));
    if (rng.bool(0.1)) return { entries: rng.pick<unknown>(['x', 1, {}, null]) };
    return { entries };
  });
}

function internalDraft(
  rng: Rng,
  ctx: GenContext,
  method: string,
  target: string,
  body: Buffer,
  extra: [string, string][] = [],
): Draft {
  const kind = rng.weighted<'none' | 'garbage' | 'valid'>([
    [3, 'none'],
    [3, 'garbage'],
    [5, 'valid'],
  ]);
  const d = draft(rng, ctx, method, target, body, kind, extra);
  if (kind === 'garbage') {
    for (const [k, v] of Object.entries(garbageCredential(rng, ctx, method, target, body))) setHeader(d.headers, k, v);
  } else if (kind === 'valid') {
    d.signValid = true;
    d.replay = rng.bool(0.1);
    d.pristine = rng.bool(0.7);
  }
  return d;
}

function kvRoutes(put: (rng: Rng) => Buffer): RouteGen[] {
  return [
    {
      name: 'get',
      weight: 6,
      draft(rng, ctx) {
        const key = rng.bool(0.5) && ctx.seededKeys.length > 0 ? rng.pick(ctx.seededKeys) : fzKey(rng);
        return draft(rng, ctx, 'GET', kvsTarget(rng, key), anyBodyMaybe(rng), 'get');
      },
    },
    { name: 'put', weight: 12, draft: (rng, ctx) => draft(rng, ctx, 'PUT', kvsTarget(rng), put(rng), 'broken body') },
    {
      name: 'delete',
      weight: 5,
      draft: (rng, ctx) =>
        draft(
          rng,
          ctx,
          'DELETE',
          kvsTarget(rng),
          rng.bool() ? anyInvalidBody(rng) : bytesOf(anyJson(rng, 2), rng),
          'missing key',
        ),
    },
    {
      name: 'write',
      weight: 12,
      draft: (rng, ctx) => draft(rng, ctx, 'POST', '/write', brokenWrite(rng), 'broken body'),
    },
    {
      name: 'read',
      weight: 5,
      draft(rng, ctx) {
        const k = rng.bool(0.5) && ctx.seededKeys.length > 0 ? rng.pick(ctx.seededKeys) : fzKey(rng);
        const q = rng.pick([
          '?key=' + encodePath(k, rng),
          '',
          '?key=',
          '?key=a&key=b',
          '?key[]=x',
          '?key=' + 'k'.repeat(rng.size(1000, 100_000)),
        ]);
        return draft(rng, ctx, 'GET', '/read' + q, anyBodyMaybe(rng), 'read');
      },
    },
    {
      name: 'data',
      weight: 3,
      draft: (rng, ctx) =>
        draft(
          rng,
          ctx,
          'GET',
          '/data' + rng.pick(['', '?tombstones=1', '?tombstones=true', '?tombstones=x', '?tombstones=1&tombstones=0']),
          anyBodyMaybe(rng),
          'data',
        ),
    },
  ];
}

export function quorumModel(): ModeModel {
  const internal: RouteGen = {
    name: 'replicate',
    weight: 6,
    draft: (rng, ctx) => internalDraft(rng, ctx, 'POST', '/replicate', brokenReplicate(rng, false)),
  };
  const routes: RouteGen[] = [
    ...kvRoutes((rng) => brokenPut(rng, 'plain')),
    { ...internal, weight: 4 },
    nodeRoutes(),
    adminRoute(['/admin/fail', '/admin/recover']),
    credentialRoute(QUORUM_PATTERNS),
    randomRoute(QUORUM_PATTERNS),
  ];
  return {
    mode: 'quorum',
    patterns: QUORUM_PATTERNS,
    risk: quorumRisk,
    refusing: quorumRefusing,
    needsCredential: (m, pattern) => ROUTED.includes(m) && pattern === '/replicate',
    routes,
  };
}

/** The internal routes of quorum mode (the "peer frames" of an HTTP mode). */
export function quorumPeerRoutes(): RouteGen[] {
  return [
    {
      name: 'replicate',
      weight: 10,
      draft: (rng, ctx) => internalDraft(rng, ctx, 'POST', '/replicate', brokenReplicate(rng, false)),
    },
    {
      name: 'catch-up',
      weight: 1,
      draft(rng, ctx) {
        const d = draft(rng, ctx, 'GET', '/data?tombstones=1', undefined, 'signed read');
        d.signValid = true;
        return d;
      },
    },
  ];
}

export function eventualModel(): ModeModel {
  const routes: RouteGen[] = [
    ...kvRoutes((rng) => brokenPut(rng, 'plain')),
    ...eventualPeerRoutes().map((r) => ({ ...r, weight: 2 })),
    nodeRoutes(),
    adminRoute(['/admin/fail', '/admin/recover']),
    credentialRoute(EVENTUAL_PATTERNS),
    randomRoute(EVENTUAL_PATTERNS),
  ];
  return {
    mode: 'eventual',
    patterns: EVENTUAL_PATTERNS,
    risk: eventualRisk,
    refusing: quorumRefusing,
    needsCredential: (m, pattern) => ROUTED.includes(m) && (pattern === '/replicate' || pattern.startsWith('/sync/')),
    routes,
  };
}

export function eventualPeerRoutes(): RouteGen[] {
  return [
    {
      name: 'replicate',
      weight: 5,
      draft: (rng, ctx) => internalDraft(rng, ctx, 'POST', '/replicate', brokenReplicate(rng, true)),
    },
    {
      name: 'digest',
      weight: 3,
      draft(rng, ctx) {
        const body = brokenBody(rng, () =>
          rng.pick<() => unknown>([
            () => ({ buckets: rng.pick<unknown>(['x', 1, {}, null]) }),
            () => ({
              buckets: Array.from({ length: 256 }, (_, i) =>
                i === rng.int(0, 255) ? rng.pick<unknown>([1, null, [], {}]) : '0',
              ),
            }),
            () => ({ buckets: Array.from({ length: rng.pick([0, 1, 255, 257, rng.size(300, 100_000)]) }, () => '0') }),
            () => ({ bucket: [] }),
          ])(),
        );
        return internalDraft(rng, ctx, 'POST', '/sync/digest', body);
      },
    },
    {
      name: 'keys',
      weight: 3,
      draft(rng, ctx) {
        const body = brokenBody(rng, () =>
          rng.pick<() => unknown>([
            () => ({ buckets: rng.pick<unknown>(['x', 1, {}, null]), summary: [] }),
            () => ({ buckets: [0], summary: rng.pick<unknown>(['x', 1, {}, null]) }),
            () => ({
              buckets: [0, -1, 1e9, 'x'],
              summary: [[rng.pick<unknown>([1, null]), { wall: 1, logical: 0, node: 'x' }]],
            }),
            () => ({
              buckets: [0],
              summary: [['fz', rng.pick<unknown>([null, {}, { wall: -1, logical: 0, node: 'x' }, 'ts'])]],
            }),
            () => ({ buckets: [0], summary: ['fz', 'x'] }),
            () => ({ summary: [] }),
          ])(),
        );
        return internalDraft(rng, ctx, 'POST', '/sync/keys', body);
      },
    },
  ];
}

// ---------------------------------------------------------------- causal

const CAUSAL_PATTERNS = [
  '/kvs/*',
  '/view',
  '/internal/replicate',
  '/internal/sync',
  '/health',
  '/status',
  '/metrics',
  '/admin/fail',
  '/admin/recover',
  '/admin/partition',
  '/admin/heal',
];

/**
 * The metadata a causal handler reads for one body value: the body's field when it has one, else the
 * `X-Causal-Metadata` header (duplicates joined by the HTTP parser, or any one of them), else none.
 */
function metadataFor(r: SemanticRequest, v: unknown): unknown[] {
  if (isObj(v) && own(v, 'causal-metadata') !== undefined) return [own(v, 'causal-metadata')];
  const header = headerValues(r.headers, 'x-causal-metadata');
  return header.length === 0 ? [undefined] : [...header, header.join(', ')];
}

/** Whether some reading of the request has well-formed metadata (with dependencies, for `deps`). */
function metadataParses(r: SemanticRequest, v: unknown, deps: boolean): boolean {
  return metadataFor(r, v).some((raw) => {
    const c = parseClockModel(raw);
    return c !== 'error' && (!deps || Object.keys(c).length > 0);
  });
}

function causalWriteOk(raw: unknown): boolean {
  if (!isObj(raw) || typeof raw.key !== 'string' || typeof raw.origin !== 'string' || typeof raw.deleted !== 'boolean')
    return false;
  if (!isObj(raw.clock)) return false;
  for (const v of Object.values(raw.clock)) if (!isSafeNat(v)) return false;
  if (((raw.clock as Record<string, number>)[raw.origin] ?? 0) < 1) return false;
  return raw.deleted || 'value' in raw;
}

function causalKeyOk(k: string): boolean {
  return keyMayBeValid(k, CAUSAL_MAX_KEY_CHARS * 4) && [...k].length <= CAUSAL_MAX_KEY_CHARS;
}

function causalRisk(r: SemanticRequest, ctx: GenContext): string | undefined {
  if (r.credential === 'garbage') return undefined;
  const values = bodyValues(r.bodies);
  const some = (f: (v: unknown) => boolean) => values.some(f);
  // A client body: absent or null is "{}" here.
  const objectish = (v: unknown): v is Record<string, unknown> | undefined | null =>
    v === undefined || v === null || isObj(v);
  for (const m of r.matches) {
    const signedPeer = r.credential === 'valid';
    if (m.pattern === '/kvs/*' && ['GET', 'HEAD', 'PUT', 'DELETE'].includes(r.method)) {
      // Well-formed dependencies that never arrive are a 503 by contract: not what is fuzzed here.
      if (some((v) => metadataParses(r, v, true))) return 'causal dependencies (a 503 by contract)';
      if (
        r.method === 'PUT' &&
        causalKeyOk(keyOf(m)) &&
        some((v) => putBodyMayBeValid(v) && metadataParses(r, v, false))
      )
        return 'a valid put';
      if (
        r.method === 'DELETE' &&
        ctx.seededKeys.includes(keyOf(m)) &&
        some((v) => objectish(v) && metadataParses(r, v, false))
      )
        return 'a delete of a key that exists';
    }
    switch (`${r.method} ${m.pattern}`) {
      case 'PUT /view':
      case 'DELETE /view': {
        const fromPeer = headerValues(r.headers, 'x-qkv-from').length > 0;
        if (fromPeer && !signedPeer) break;
        if (some((v) => isObj(v) && isSocketAddressModel(own(v, 'socket-address')))) return 'a view change';
        break;
      }
      case 'POST /internal/replicate':
        if (signedPeer && some((v) => isObj(v) && causalWriteOk(v.write))) return 'a valid replication';
        break;
      case 'POST /internal/sync':
        if (signedPeer && some((v) => objectish(v) && parseClockModel(isObj(v) ? v.vc : undefined) !== 'error'))
          return 'a valid sync';
        break;
      case 'POST /admin/fail':
      case 'POST /admin/recover':
      case 'POST /admin/partition':
      case 'POST /admin/heal':
        return 'an admin switch';
    }
  }
  return undefined;
}

function causalRefusing(method: string, pattern: string): boolean {
  if (pattern === '/kvs/*' || pattern === '/view') return method === 'PUT' || method === 'DELETE';
  return method === 'POST' && (pattern.startsWith('/internal/') || pattern.startsWith('/admin/'));
}

function causalMetaHeader(rng: Rng): [string, string][] {
  if (rng.bool(0.6)) return [];
  const v = rng.pick<() => unknown>([() => null, () => ({}), () => brokenClock(rng)])();
  const text = typeof v === 'string' ? v : render(v);
  return [['x-causal-metadata', headerSafe(text)]];
}

function causalClientBody(rng: Rng): Buffer | undefined {
  return rng.weighted<() => Buffer | undefined>([
    [3, () => undefined],
    [3, () => bytesOf({ 'causal-metadata': rng.bool(0.3) ? null : brokenClock(rng) }, rng)],
    [2, () => anyInvalidBody(rng)],
    [
      2,
      () =>
        bytesOf(
          new Entries([
            ['causal-metadata', brokenClock(rng)],
            ...Array.from({ length: rng.int(0, 3) }, () => ['x', anyJson(rng, 2)] as [string, unknown]),
          ]),
          rng,
        ),
    ],
  ])();
}

function brokenView(rng: Rng): Buffer {
  return brokenBody(rng, () =>
    breakEntries(
      rng,
      [['socket-address', '127.0.0.1:9']],
      [
        drop('socket-address'),
        put('socket-address', () =>
          rng.pick<unknown>([
            '',
            '127.0.0.1',
            '127.0.0.1:0',
            '127.0.0.1:65536',
            ':80',
            'a b:1',
            '127.0.0.1:1:2',
            'http://x:1',
            1,
            null,
            [],
            {},
            'x'.repeat(300) + ':',
            '[::1]',
            randomString(rng, 20),
          ]),
        ),
      ],
    ),
  );
}

function brokenCausalWrite(rng: Rng, ctx: GenContext): Buffer {
  const origin = rng.pick(ctx.nodes.map((n) => n.address ?? '127.0.0.1:1'));
  const w: [string, unknown][] = [
    ['key', fzKey(rng)],
    ['value', anyJson(rng, 2)],
    ['deleted', false],
    ['origin', origin],
    ['clock', { [origin]: 1 }],
  ];
  return brokenBody(rng, () => {
    const broken = breakEntries(rng, w, [
      drop('key'),
      drop('origin'),
      drop('deleted'),
      drop('clock'),
      drop('value'),
      put('deleted', () => rng.pick<unknown>(['false', 0, null])),
      put('clock', () =>
        rng.pick<unknown>([{}, { [origin]: 0 }, { [origin]: -1 }, { [origin]: 1.5 }, { x: 1 }, [], 'x', null]),
      ),
      put('key', () => rng.pick<unknown>([1, null, []])),
      put('origin', () => rng.pick<unknown>([1, null, ''])),
    ]);
    return rng.bool(0.85)
      ? { write: broken }
      : rng.pick<unknown>([{ write: null }, { writes: [broken] }, {}, { write: 'x' }]);
  });
}

export function causalModel(): ModeModel {
  const routes: RouteGen[] = [
    {
      name: 'get',
      weight: 8,
      draft(rng, ctx) {
        const key = rng.bool(0.5) && ctx.seededKeys.length > 0 ? rng.pick(ctx.seededKeys) : fzKey(rng);
        return draft(rng, ctx, 'GET', kvsTarget(rng, key), causalClientBody(rng), 'get', causalMetaHeader(rng));
      },
    },
    {
      name: 'put',
      weight: 14,
      draft: (rng, ctx) =>
        draft(rng, ctx, 'PUT', kvsTarget(rng), brokenPut(rng, 'causal'), 'broken body', causalMetaHeader(rng)),
    },
    {
      name: 'delete',
      weight: 5,
      draft: (rng, ctx) =>
        draft(rng, ctx, 'DELETE', kvsTarget(rng), causalClientBody(rng), 'missing key', causalMetaHeader(rng)),
    },
    { name: 'view-read', weight: 2, draft: (rng, ctx) => draft(rng, ctx, 'GET', '/view', anyBodyMaybe(rng), 'view') },
    {
      name: 'view-change',
      weight: 6,
      draft: (rng, ctx) => draft(rng, ctx, rng.pick(['PUT', 'DELETE']), '/view', brokenView(rng), 'broken view change'),
    },
    ...causalPeerRoutes().map((r) => ({ ...r, weight: 2 })),
    nodeRoutes(),
    adminRoute(['/admin/fail', '/admin/recover', '/admin/partition', '/admin/heal']),
    credentialRoute(CAUSAL_PATTERNS),
    randomRoute(CAUSAL_PATTERNS),
  ];
  return {
    mode: 'causal',
    patterns: CAUSAL_PATTERNS,
    risk: causalRisk,
    refusing: causalRefusing,
    // The internal routes serve POST only (another method finds no route); /view has 405 answers too.
    needsCredential: (method, pattern, headers) =>
      (pattern.startsWith('/internal/') && method === 'POST') ||
      (pattern === '/view' &&
        ROUTED.includes(method) &&
        method !== 'GET' &&
        headerValues(headers, 'x-qkv-from').length > 0),
    routes,
  };
}

export function causalPeerRoutes(): RouteGen[] {
  return [
    {
      name: 'replicate',
      weight: 5,
      draft: (rng, ctx) => internalDraft(rng, ctx, 'POST', '/internal/replicate', brokenCausalWrite(rng, ctx)),
    },
    {
      name: 'sync',
      weight: 3,
      draft(rng, ctx) {
        const from = rng.pick(ctx.nodes.map((n) => n.address ?? '127.0.0.1:1'));
        const body = brokenBody(
          rng,
          () =>
            new Entries([
              ['vc', brokenClock(rng)],
              ['inc', rng.bool() ? 'fz' : anyJson(rng, 1)],
            ]),
        );
        return internalDraft(rng, ctx, 'POST', '/internal/sync', body, [['x-qkv-from', from]]);
      },
    },
    {
      name: 'view-change',
      weight: 3,
      draft(rng, ctx) {
        const from = rng.pick(ctx.nodes.map((n) => n.address ?? '127.0.0.1:1'));
        return internalDraft(rng, ctx, rng.pick(['PUT', 'DELETE']), '/view', brokenView(rng), [['x-qkv-from', from]]);
      },
    },
  ];
}

// ---------------------------------------------------------------- lookup

export function modelOf(mode: FuzzMode): ModeModel {
  switch (mode) {
    case 'raft':
      return raftModel();
    case 'chat':
      return chatModel();
    case 'quorum':
      return quorumModel();
    case 'eventual':
      return eventualModel();
    case 'causal':
      return causalModel();
  }
}

/** The HTTP modes' "peer frames": their internal routes, unsigned, wrongly signed and signed with garbage. */
export function peerRoutesOf(mode: FuzzMode): RouteGen[] | undefined {
  switch (mode) {
    case 'quorum':
      return quorumPeerRoutes();
    case 'eventual':
      return eventualPeerRoutes();
    case 'causal':
      return causalPeerRoutes();
    default:
      return undefined;
  }
}

export { CONTENT_TYPES, MAX_JSON_DEPTH };
