/**
 * Generation of fuzzed HTTP requests. A mode's catalogue (http-routes.ts) drafts a request for one of its
 * routes — a method, a request target, headers, a body that breaks the route's rules — and this engine
 * then mutates it at every layer: the method, the target (encodings, `..`, NUL, overlong and invalid UTF-8,
 * huge query strings), the headers (content types, duplicates, huge or invalid ones, credentials), the
 * framing (content-length mismatches, chunked encodings valid and broken, pipelining, slow writes).
 *
 * Before a case is accepted, the mode's model (model.ts) checks it under every interpretation a node might
 * make of it; one that might be a valid state-changing request (or one the contract answers with a 5xx,
 * such as a causal read waiting for dependencies that never come) is drawn again. Each case comes from its
 * own generator (`Rng(seed, stream, index)`), so any case can be regenerated alone from its seed and index.
 */
import { PEER_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TS_HEADER } from '../net/peer-auth.js';
import { headerSafe, render, randomString, universallyInvalid } from './json.js';
import { bodyView, classify, headerValues, routeExactly, type BodyView, type Credential, type Match } from './model.js';
import { Rng } from './rng.js';

export type FuzzMode = 'raft' | 'chat' | 'quorum' | 'causal' | 'eventual';

export interface NodeInfo {
  readonly index: number;
  readonly role: 'leader' | 'follower' | 'replica';
  /** causal: this replica's `IP:PORT`. */
  readonly address?: string;
}

/** Facts about the seeded cluster that drafts may use. */
export interface GenContext {
  readonly mode: FuzzMode;
  readonly nodes: readonly NodeInfo[];
  /** Keys that hold data (never written or deleted by a generated request). */
  readonly seededKeys: readonly string[];
  /** chat: real tokens, rooms and their members, registered users. */
  readonly chat?: {
    readonly tokens: Readonly<Record<string, string>>;
    readonly rooms: Readonly<Record<string, readonly string[]>>;
    readonly users: readonly string[];
  };
  /** raft: users and roles that exist. */
  readonly authNames?: { readonly users: readonly string[]; readonly roles: readonly string[] };
  /** Signs with the cluster secret, as a peer would. */
  readonly sign: (method: string, pathAndQuery: string, body?: Uint8Array) => Record<string, string>;
  /** Signs with a secret the cluster does not hold. */
  readonly signWrong: (method: string, pathAndQuery: string, body?: Uint8Array) => Record<string, string>;
  /** Signs with the cluster secret and a clock `skewMs` off. */
  readonly signSkewed: (
    skewMs: number,
    method: string,
    pathAndQuery: string,
    body?: Uint8Array,
  ) => Record<string, string>;
}

/** Which node a request goes to: an index, or whichever node leads when it is sent. */
export type NodeRef = number | 'leader';

/** A route's request before the engine's mutations. */
export interface Draft {
  method: string;
  target: string;
  headers: [string, string][];
  body: Buffer | undefined;
  node: NodeRef;
  label: string;
  /** Sign the final request with the cluster secret (after mutations, so the signature matches). */
  signValid?: boolean;
  /** Send it twice: the second time it is a replay and must be refused. */
  replay?: boolean;
  /** Leave the target, method and framing alone (mutating them would not exercise what the draft is for). */
  pristine?: boolean;
}

export interface SemanticRequest {
  readonly method: string;
  readonly matches: readonly Match[];
  readonly headers: readonly (readonly [string, string])[];
  readonly bodies: readonly BodyView[];
  readonly credential: Credential;
  readonly node: NodeInfo | undefined;
}

/** A mode's routes and its model of what may change state. */
export interface ModeModel {
  readonly mode: FuzzMode;
  readonly patterns: readonly string[];
  /** The reason this request might be a valid state-changing one, or be answered 5xx by contract. */
  risk(r: SemanticRequest, ctx: GenContext): string | undefined;
  /** Routes that change state or serve peers: a generated request to them must be refused (no 2xx). */
  refusing(method: string, pattern: string): boolean;
  /**
   * Whether the node requires a peer credential for this request (its policy; admin routes are open on
   * the loopback-only test clusters). Such a request without one is refused before any handler runs.
   */
  needsCredential(method: string, pattern: string, headers: readonly (readonly [string, string])[]): boolean;
  readonly routes: readonly RouteGen[];
}

export interface RouteGen {
  readonly name: string;
  readonly weight: number;
  draft(rng: Rng, ctx: GenContext): Draft;
}

export interface HttpCase {
  readonly index: number;
  readonly node: NodeRef;
  readonly label: string;
  readonly transport: 'raw' | 'undici';
  readonly method: string;
  readonly target: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer | undefined;
  /** raw: the bytes, in writes separated by `gapsMs`. */
  readonly writes: readonly Buffer[];
  readonly gapsMs: readonly number[];
  /** A complete request: a node must answer it. */
  readonly expectAnswer: boolean;
  /** A 2xx answer would mean an invalid request was accepted. */
  readonly expectRefusal: boolean;
  /**
   * Sent without a credential to a route that requires one: only peer authentication (401), the router
   * (404) or the HTTP layer before it may answer — any other answer means a handler ran.
   */
  readonly expectAuthRefusal: boolean;
  readonly repeat: number;
  /** What was applied, for reports. */
  readonly mutations: readonly string[];
}

const STANDARD_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'];
const ODD_METHODS = [
  'PROPFIND',
  'PROPPATCH',
  'MKCOL',
  'COPY',
  'MOVE',
  'LOCK',
  'UNLOCK',
  'TRACE',
  'SEARCH',
  'REPORT',
  'MKACTIVITY',
  'CHECKOUT',
  'MERGE',
  'M-SEARCH',
  'NOTIFY',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'PURGE',
  'LINK',
  'UNLINK',
  'SOURCE',
  'QUERY',
  'BIND',
  'REBIND',
  'UNBIND',
  'ACL',
  'MKCALENDAR',
  'CONNECT',
];
const GARBAGE_METHODS = [
  'get',
  'Put',
  'FOO',
  'G E T',
  'GET\u0000',
  'PÖST',
  '',
  'X'.repeat(1000),
  '1',
  '-',
  'DELETE ',
  '\tGET',
];

export const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'APPLICATION/JSON',
  'application/json, text/plain',
  'application/jsonx',
  'application/json;;;',
  'application/*',
  'text/plain',
  'text/plain; charset=utf-8',
  'text/html',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----x',
  'application/octet-stream',
  'application/xml',
  'a/b/c',
  ';',
  '',
  'application/json; ' + 'a=b; '.repeat(300),
];

/**
 * Percent-encodes the UTF-8 bytes of `s` (a lone surrogate becomes U+FFFD's bytes, as in any encoder),
 * leaving the characters `keep` matches as they are. Unlike encodeURIComponent it never throws.
 */
export function pct(s: string, keep: RegExp = /[A-Za-z0-9_.!~*'()-]/): string {
  let out = '';
  for (const ch of s) {
    if (ch.length === 1 && keep.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += '%' + b.toString(16).padStart(2, '0').toUpperCase();
  }
  return out;
}

/** A request-target spelling of `s` in one of several encodings, each of which decodes back to `s`. */
export function encodePath(s: string, rng: Rng): string {
  switch (rng.int(0, 4)) {
    case 0:
      return pct(s);
    case 1:
      // Every byte encoded, letters included.
      return pct(s, /$^/);
    case 2:
      return pct(s, /[A-Za-z0-9_.!~*'()/-]/);
    case 3:
      return pct(s, /[A-Za-z0-9_.!~*'();:@&=+$,/-]/);
    default:
      return pct(s, /[A-Za-z0-9._~-]/).toLowerCase();
  }
}

const PATH_GARBAGE = [
  '%',
  '%0',
  '%zz',
  '%00',
  '%ff',
  '%c0%af',
  '%e0%80%af',
  '%ed%a0%80',
  '%f4%90%80%80',
  '%25',
  '%2e%2e',
  '..',
  '.',
  '//',
  '/./',
  '/../',
  '\\',
  '%5c',
  ';',
  ';jsessionid=1',
  '*',
  '%2A',
  '~',
  '@',
  '%40',
  '&',
  '=',
  '+',
  '%20',
  '%0a',
  '%0d%0a',
  '%09',
];

/** Garbage added to a request target. */
function mangleTarget(t: string, rng: Rng): [string, string] {
  const q = t.indexOf('?');
  const path = q < 0 ? t : t.slice(0, q);
  const query = q < 0 ? '' : t.slice(q);
  switch (rng.int(0, 15)) {
    case 14:
    case 15: {
      // The route's own characters percent-encoded (`/%72eplicate`): the router decodes them.
      const letters = [...path].map((ch, i) => (/[A-Za-z]/.test(ch) ? i : -1)).filter((i) => i >= 0);
      if (letters.length === 0) return [path + query, 'encoded-route'];
      const chosen = new Set(Array.from({ length: rng.int(1, 3) }, () => rng.pick(letters)));
      const enc = [...path].map((ch, i) => (chosen.has(i) ? '%' + ch.charCodeAt(0).toString(16) : ch)).join('');
      return [enc + query, 'encoded-route'];
    }
    case 0:
      return [path + rng.pick(PATH_GARBAGE) + query, 'path-garbage-suffix'];
    case 1: {
      const at = rng.int(1, Math.max(1, path.length));
      return [path.slice(0, at) + rng.pick(PATH_GARBAGE) + path.slice(at) + query, 'path-garbage-inside'];
    }
    case 2:
      return [path + (query === '' ? '?' : query + '&') + hugeQuery(rng), 'huge-query'];
    case 3:
      return [path + (query === '' ? '?' : query + '&') + oddQuery(rng), 'odd-query'];
    case 4:
      return [path + '/' + 'a'.repeat(rng.size(100, 200_000)) + query, 'overlong-path'];
    case 5:
      return [path.toUpperCase() + query, 'upper-case'];
    case 6:
      return [path + '/' + query, 'trailing-slash'];
    case 7:
      return ['/' + path + query, 'double-slash'];
    case 8:
      return [
        `${rng.pick(['http', 'https', 'HTTP', 'ftp'])}://${rng.pick(['127.0.0.1', 'evil.example', 'a@b', '[::1]:1', ''])}${path}${query}`,
        'absolute-form',
      ];
    case 9:
      return [
        rng.pick(['*', '', 'kvs/a', '/kvs\u0000', '/\u00ff', '//', '/..', '/%2e%2e/%2e%2e/etc/passwd']),
        'odd-target',
      ];
    case 10:
      return [path + '#' + randomString(rng, 20) + query, 'fragment'];
    case 11:
      return [path + query + '\u0000', 'nul'];
    case 12:
      return [path + pct(randomString(rng, 30)) + query, 'random-suffix'];
    default:
      return [
        Buffer.from(path + query, 'utf8').toString('latin1') + Buffer.from('é', 'utf8').toString('latin1'),
        'raw-utf8',
      ];
  }
}

function hugeQuery(rng: Rng): string {
  const n = rng.size(100, 200_000);
  return rng.pick(['prefix', 'q', 'limit', 'after', 'consistency', 'x']) + '=' + 'a'.repeat(n);
}

function oddQuery(rng: Rng): string {
  return rng.pick([
    'consistency=stale&consistency=lease',
    'consistency=' + pct(randomString(rng, 10)),
    'consistency[]=stale',
    'limit=-1',
    'limit=0',
    'limit=1e3',
    'limit=99999999999999999999',
    'limit=abc',
    'limit=',
    'after=%ff',
    'prefix=%00',
    'prefix=%zz',
    '__proto__[x]=1',
    'constructor[prototype][x]=1',
    '__proto__=1',
    'a=1&a=2&a=3',
    '=',
    '&&&',
    '%',
    'tombstones=' + randomString(rng, 5),
    'key=' + pct(randomString(rng, 10)),
    'key',
    'key=&key=a',
    'after=-5',
    'after=1.5',
  ]);
}

/** Garbage in one credential header (the request then carries a credential that can never verify). */
export function garbageCredential(
  rng: Rng,
  ctx: GenContext,
  method: string,
  pq: string,
  body?: Buffer,
): Record<string, string> {
  const base = (): Record<string, string> => ctx.sign(method, pq, body);
  return rng.weighted<() => Record<string, string>>([
    [3, () => ctx.signWrong(method, pq, body)],
    [2, () => ({ ...base(), [SIGNATURE_HEADER]: rng.bytes(32).toString('hex') })],
    [1, () => ctx.signSkewed(rng.pick([-1, 1]) * rng.int(61_000, 10 ** 10), method, pq, body)],
    [
      2,
      () => {
        const h = base();
        const drop = rng.pick([PEER_HEADER, TS_HEADER, NONCE_HEADER, SIGNATURE_HEADER]);
        delete h[drop];
        // Nothing left that proves the secret: the signature is what a holder computes.
        if (drop !== SIGNATURE_HEADER) h[SIGNATURE_HEADER] = rng.bytes(32).toString('hex');
        return h;
      },
    ],
    [
      2,
      () => {
        const h: Record<string, string> = { ...base(), [SIGNATURE_HEADER]: rng.bytes(32).toString('hex') };
        const field = rng.pick([PEER_HEADER, TS_HEADER, NONCE_HEADER, SIGNATURE_HEADER]);
        h[field] = rng.pick([
          '',
          'x',
          '-1',
          '1e3',
          'NaN',
          'ffff',
          '0000000000000000.0',
          'zzzzzzzzzzzzzzzz.1',
          '0123456789abcdef.99999999999999999',
          'a'.repeat(rng.size(10, 8000)),
          rng.bytes(rng.size(1, 64)).toString('hex'),
          String(Date.now()),
        ]);
        return h;
      },
    ],
    [1, () => ({ [rng.pick([PEER_HEADER, TS_HEADER, NONCE_HEADER, SIGNATURE_HEADER])]: randomString(rng, 30) })],
  ])();
}

const HEADER_NAMES_ODD = [
  'x-quorumkv-forwarded',
  'x-quorumkv-user',
  'x-causal-metadata',
  'x-qkv-from',
  'last-event-id',
  'authorization',
  'cookie',
  'x-forwarded-for',
  'x-http-method-override',
  'range',
  'if-none-match',
  'accept',
  'accept-encoding',
  'origin',
  'referer',
  'user-agent',
  'content-encoding',
  'content-language',
];

function oddHeaderValue(rng: Rng): string {
  return rng.weighted<() => string>([
    [3, () => headerSafe(randomString(rng, 40))],
    [2, () => 'Bearer ' + rng.pick(['', 'x', 'a'.repeat(600), rng.bytes(32).toString('base64'), '../..', 'null'])],
    [1, () => 'Basic ' + Buffer.from(randomString(rng, 20)).toString('base64')],
    [1, () => '{"a":' + rng.int(0, 9) + '}'],
    [1, () => 'x'.repeat(rng.size(100, 20_000))],
    [1, () => 'gzip, deflate, br, compress, identity, *;q=0'],
  ])();
}

/** Header mutations; the raw-only ones (not expressible through an HTTP client) say so. */
function mutateHeaders(h: [string, string][], rng: Rng, out: string[]): boolean {
  let raw = false;
  const n = rng.int(1, 3);
  for (let i = 0; i < n; i++) {
    switch (rng.int(0, 13)) {
      case 0:
        setHeader(h, 'content-type', rng.pick(CONTENT_TYPES));
        out.push('content-type');
        break;
      case 1:
        removeHeader(h, 'content-type');
        out.push('no-content-type');
        break;
      case 2:
        h.push(['content-type', rng.pick(CONTENT_TYPES)]);
        out.push('duplicate-content-type');
        raw = true;
        break;
      case 3:
        h.push([rng.pick(HEADER_NAMES_ODD), oddHeaderValue(rng)]);
        out.push('odd-header');
        break;
      case 4:
        h.push(['x-' + 'h'.repeat(rng.int(1, 20)), 'v'.repeat(rng.size(1000, 70_000))]);
        out.push('huge-header');
        raw = true;
        break;
      case 5:
        for (let j = rng.size(50, 3000); j > 0; j--) h.push([`x-f${j}`, String(j)]);
        out.push('many-headers');
        raw = true;
        break;
      case 6:
        h.push([rng.pick(['x-a b', 'x-a:b', 'x-\u00e9', '', ' x', 'x\u0000', '(x)', 'x@y']), 'v']);
        out.push('invalid-header-name');
        raw = true;
        break;
      case 7:
        h.push(['x-bad', rng.pick(['a\u0000b', 'a\u007fb', '\u00ff\u00fe', 'a\rb', 'a\u0001', '\u0080'])]);
        out.push('invalid-header-value');
        raw = true;
        break;
      case 8:
        h.push(['x-fold', 'a'], [' continued', 'b']);
        out.push('obs-fold');
        raw = true;
        break;
      case 9:
        removeHeader(h, 'host');
        switch (rng.int(0, 2)) {
          case 0:
            h.push(['host', rng.pick(['', 'a b', 'evil.example', '[::1', 'x'.repeat(5000)])]);
            break;
          case 1:
            h.push(['host', 'a'], ['host', 'b']);
            break;
          default:
          // no host at all
        }
        out.push('host');
        raw = true;
        break;
      case 10:
        h.push(['expect', rng.pick(['100-continue', '200-ok', 'garbage', ''])]);
        out.push('expect');
        raw = true;
        break;
      case 11:
        h.push(['connection', rng.pick(['upgrade', 'keep-alive, upgrade', 'close, close', 'te'])]);
        h.push(['upgrade', rng.pick(['websocket', 'h2c', 'HTTP/2.0', 'garbage'])]);
        out.push('upgrade');
        raw = true;
        break;
      case 12:
        h.push(['content-encoding', rng.pick(['gzip', 'br', 'deflate', 'identity', 'x-garbage', 'gzip, gzip'])]);
        out.push('content-encoding');
        break;
      default:
        h.push(['authorization', oddHeaderValue(rng)]);
        out.push('authorization');
    }
  }
  return raw;
}

export function setHeader(h: [string, string][], name: string, value: string): void {
  removeHeader(h, name);
  h.push([name, value]);
}

export function removeHeader(h: [string, string][], name: string): void {
  for (let i = h.length - 1; i >= 0; i--) if ((h[i] as [string, string])[0].toLowerCase() === name) h.splice(i, 1);
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

type Framing =
  'cl' | 'none' | 'cl-short' | 'cl-long' | 'cl-garbage' | 'cl-dup' | 'chunked' | 'chunked-bad' | 'te-cl' | 'te-other';

interface Framed {
  readonly head: [string, string][];
  readonly payload: Buffer;
  /** What a node that accepts this framing reads as the body. */
  readonly effective: readonly Buffer[];
  readonly complete: boolean;
}

function chunked(body: Buffer, rng: Rng): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  while (off < body.length) {
    const n = Math.min(body.length - off, rng.size(1, 64 * 1024));
    const ext = rng.bool(0.1) ? ';' + rng.pick(['a=b', 'x', 'n="q"']) : '';
    parts.push(Buffer.from(n.toString(16) + ext + '\r\n'), body.subarray(off, off + n), Buffer.from('\r\n'));
    off += n;
  }
  parts.push(Buffer.from('0\r\n'));
  if (rng.bool(0.1)) parts.push(Buffer.from('x-trailer: 1\r\n'));
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

function frame(kind: Framing, head: [string, string][], body: Buffer, rng: Rng): Framed {
  const len = body.length;
  const h = [...head];
  switch (kind) {
    case 'cl':
      h.push(['content-length', String(len)]);
      return { head: h, payload: body, effective: [body], complete: true };
    case 'none':
      // Without a length the body is no body: the bytes become the start of a next request.
      return { head: h, payload: body, effective: [Buffer.alloc(0), body], complete: true };
    case 'cl-short': {
      const n = len === 0 ? 0 : rng.int(0, len - 1);
      h.push(['content-length', String(n)]);
      return { head: h, payload: body, effective: [body.subarray(0, n), body], complete: true };
    }
    case 'cl-long':
      h.push(['content-length', String(len + rng.size(1, 10_000_000))]);
      return { head: h, payload: body, effective: [body], complete: false };
    case 'cl-garbage':
      h.push([
        'content-length',
        rng.pick(['-1', 'abc', '1e3', '0x10', ' 5', '5 5', '99999999999999999999', '', '+5', '5,5', '\u00b9']),
      ]);
      return { head: h, payload: body, effective: [body, Buffer.alloc(0)], complete: true };
    case 'cl-dup':
      h.push(['content-length', String(len)], ['content-length', String(rng.bool() ? len : len + 1)]);
      return { head: h, payload: body, effective: [body], complete: true };
    case 'chunked':
      h.push(['transfer-encoding', 'chunked']);
      return { head: h, payload: chunked(body, rng), effective: [body], complete: true };
    case 'chunked-bad': {
      h.push(['transfer-encoding', 'chunked']);
      const bad = rng.pick([
        () => Buffer.concat([Buffer.from('zz\r\n'), body, Buffer.from('\r\n0\r\n\r\n')]),
        () => Buffer.concat([Buffer.from(`${(len + 5).toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]),
        () => Buffer.concat([Buffer.from(`${len.toString(16)}\r\n`), body, Buffer.from('0\r\n\r\n')]),
        () => Buffer.concat([Buffer.from('ffffffffffffffff\r\n'), body]),
        () => Buffer.concat([Buffer.from('-1\r\n'), body, Buffer.from('\r\n0\r\n\r\n')]),
        () => Buffer.concat([Buffer.from(` ${len.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]),
        () =>
          Buffer.concat([
            Buffer.from(`${len.toString(16)};${'e'.repeat(20_000)}\r\n`),
            body,
            Buffer.from('\r\n0\r\n\r\n'),
          ]),
        () => Buffer.concat([Buffer.from(`${len.toString(16)}\n`), body, Buffer.from('\n0\n\n')]),
        () =>
          Buffer.concat([Buffer.from(`${len.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\nbad trailer\r\n\r\n')]),
        () => chunked(body, rng).subarray(0, -2),
      ])();
      return { head: h, payload: bad, effective: [body], complete: true };
    }
    case 'te-cl':
      h.push(['transfer-encoding', 'chunked'], ['content-length', String(len)]);
      return { head: h, payload: chunked(body, rng), effective: [body], complete: true };
    case 'te-other':
      h.push([
        'transfer-encoding',
        rng.pick(['gzip, chunked', 'chunked, gzip', 'identity', 'garbage', 'chunked, chunked', 'CHUNKED', 'chunked ']),
      ]);
      return {
        head: h,
        payload: rng.bool() ? chunked(body, rng) : body,
        effective: [body, Buffer.alloc(0)],
        complete: true,
      };
  }
}

/** The request line and headers as bytes (latin1: every char is one byte, as on the wire). */
function head(
  method: string,
  target: string,
  version: string,
  headers: readonly (readonly [string, string])[],
  eol: string,
): Buffer {
  let s = `${method} ${target} ${version}${eol}`;
  for (const [k, v] of headers) s += k === '' && v === '' ? eol : `${k}: ${v}${eol}`;
  return Buffer.from(s + eol, 'latin1');
}

/** Splits bytes into 1 to 4 writes (a slow sender). */
function split(b: Buffer, rng: Rng): Buffer[] {
  if (b.length < 2 || rng.bool(0.85)) return [b];
  const n = rng.int(2, Math.min(4, b.length));
  const cuts = Array.from({ length: n - 1 }, () => rng.int(1, b.length - 1)).sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of cuts) {
    out.push(b.subarray(prev, c));
    prev = c;
  }
  out.push(b.subarray(prev));
  return out.filter((x) => x.length > 0);
}

/** Whether the final headers carry a credential, and whether it could be one the cluster accepts. */
function credentialOf(headers: readonly (readonly [string, string])[], validSigs: ReadonlySet<string>): Credential {
  const names = [PEER_HEADER, TS_HEADER, NONCE_HEADER, SIGNATURE_HEADER];
  let presented = false;
  for (const [k, v] of headers) {
    const n = k.trim().toLowerCase();
    if (!names.includes(n)) continue;
    presented = true;
    if (n === SIGNATURE_HEADER && [...validSigs].some((s) => v.includes(s))) return 'valid';
  }
  return presented ? 'garbage' : 'none';
}

export interface GenerateOptions {
  readonly model: ModeModel;
  readonly ctx: GenContext;
  readonly seed: number;
  readonly stream: string;
  /** Share of requests sent raw even when an HTTP client could send them. */
  readonly rawShare?: number;
  /** Restrict to these route generators (the peer stream of the HTTP modes). */
  readonly routes?: readonly RouteGen[];
}

/** Case `index` of a stream: deterministic for (seed, stream, index) and the context's facts. */
export function generateCase(o: GenerateOptions, index: number): HttpCase {
  const rng = new Rng(o.seed, o.stream, index);
  const routes = o.routes ?? o.model.routes;
  for (let attempt = 0; attempt < 40; attempt++) {
    const route = rng.weighted(routes.map((r) => [r.weight, r] as const));
    const c = build(route, rng, o, index);
    if (c !== undefined) return c;
  }
  // Nothing safe came out (should not happen): a harmless health check.
  return finish(
    { method: 'GET', target: '/health', headers: [['host', 'fuzz']], body: undefined, node: 0, label: 'fallback' },
    rng,
    o,
    index,
    [],
    'undici',
    new Set(),
  ) as HttpCase;
}

function build(route: RouteGen, rng: Rng, o: GenerateOptions, index: number): HttpCase | undefined {
  const d = route.draft(rng, o.ctx);
  const mutations: string[] = [];
  let raw = rng.bool(o.rawShare ?? 0.35);
  if (!d.pristine) {
    if (rng.bool(0.12)) {
      d.method = rng.weighted([
        [5, () => rng.pick(STANDARD_METHODS)],
        [4, () => rng.pick(ODD_METHODS)],
        [1, () => rng.pick(GARBAGE_METHODS)],
      ])();
      mutations.push('method');
    }
    if (rng.bool(0.15)) {
      const [t, what] = mangleTarget(d.target, rng);
      d.target = t;
      mutations.push(what);
    }
  }
  if (rng.bool(0.2) && mutateHeaders(d.headers, rng, mutations)) raw = true;
  if (d.body !== undefined && rng.bool(0.1)) {
    d.body = mutateBytes(d.body, rng);
    mutations.push('body-bytes');
  }
  const validSigs = new Set<string>();
  if (d.signValid === true) {
    const pq = d.target;
    const sig = o.ctx.sign(d.method, pq, d.body);
    for (const [k, v] of Object.entries(sig)) setHeader(d.headers, k, v);
    validSigs.add(sig[SIGNATURE_HEADER] as string);
  }
  // What an HTTP client would refuse to send goes raw (undici, given an invalid header value, rejects the
  // request but leaves its connection busy for good).
  if (/[^\u0021-\u007e]/.test(d.target) || !d.target.startsWith('/')) raw = true;
  if (!TOKEN.test(d.method) || d.method === 'CONNECT') raw = true;
  if (d.headers.some(([k, v]) => !TOKEN.test(k) || /[^\t\u0020-\u007e\u0080-\u00ff]/.test(v) || v !== v.trim()))
    raw = true;
  return finish(d, rng, o, index, mutations, raw ? 'raw' : 'undici', validSigs, route.name);
}

function finish(
  d: Draft,
  rng: Rng,
  o: GenerateOptions,
  index: number,
  mutations: string[],
  transport: 'raw' | 'undici',
  validSigs: ReadonlySet<string>,
  routeName = 'fallback',
): HttpCase | undefined {
  if (transport === 'raw') {
    // On the wire every character is one byte (latin1): judge the request by the bytes sent.
    const wire = (x: string) => Buffer.from(x, 'latin1').toString('latin1');
    d.target = wire(d.target);
    d.method = wire(d.method);
    d.headers = d.headers.map(([k, v]) => [wire(k), wire(v)]);
  }
  const body = d.body ?? Buffer.alloc(0);
  let framing: Framing = 'cl';
  if (transport === 'raw' && !d.pristine && rng.bool(0.5)) {
    framing = rng.weighted<Framing>([
      [4, 'cl'],
      [2, 'none'],
      [2, 'cl-short'],
      [1, 'cl-long'],
      [1, 'cl-garbage'],
      [1, 'cl-dup'],
      [3, 'chunked'],
      [2, 'chunked-bad'],
      [1, 'te-cl'],
      [1, 'te-other'],
    ]);
    if (framing !== 'cl') mutations.push(framing);
  }
  const headers = d.headers.map(([k, v]) => [k, v] as [string, string]);
  if (d.body === undefined && framing === 'cl') framing = 'none';
  const f = frame(framing, headers, body, rng);
  const node = typeof d.node === 'number' ? o.ctx.nodes[d.node] : o.ctx.nodes.find((n) => n.role === 'leader');
  const sem: SemanticRequest = {
    method: d.method.trim().toUpperCase(),
    matches: classify(d.target, o.model.patterns),
    headers: f.head,
    bodies: [...new Set([...f.effective, body])].map(bodyView),
    credential: credentialOf(f.head, validSigs),
    node,
  };
  if (o.model.risk(sem, o.ctx) !== undefined) return undefined;
  const refusing = sem.matches.some((m) => o.model.refusing(sem.method, m.pattern));
  const authRefusal =
    sem.credential === 'none' &&
    TOKEN.test(d.method) &&
    routeExactly(d.target, o.model.patterns).some((m) => o.model.needsCredential(d.method, m.pattern, f.head));
  let version = 'HTTP/1.1';
  let eol = '\r\n';
  let method = d.method;
  let target = d.target;
  if (transport === 'raw' && !d.pristine && rng.bool(0.1)) {
    const what = rng.int(0, 5);
    if (what === 0)
      version = rng.pick(['HTTP/1.0', 'HTTP/0.9', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/1.1x', 'HTTP/11', 'http/1.1', '']);
    else if (what === 1) eol = '\n';
    else if (what === 2) method = method + ' ';
    else if (what === 3) target = target.replace(/^\//, '/ ');
    else if (what === 4) method = '\r\n' + method;
    else target = target + '\t';
    mutations.push('request-line');
  }
  let writes: Buffer[] = [];
  let gaps: number[] = [];
  if (transport === 'raw') {
    let bytes = Buffer.concat([head(method, target, version, f.head, eol), f.payload]);
    if (!d.pristine && rng.bool(0.05)) {
      bytes = Buffer.concat([
        bytes,
        Buffer.from(`GET /health HTTP/1.1\r\nhost: x\r\n\r\n`),
        rng.bool() ? rng.bytes(rng.size(1, 200)) : Buffer.alloc(0),
      ]);
      mutations.push('pipelined');
    }
    writes = split(bytes, rng);
    gaps = writes.map(() => (writes.length > 1 ? rng.int(0, 15) : 0));
  }
  const complete = f.complete && method !== 'CONNECT' && !mutations.includes('upgrade');
  return {
    index,
    node: d.node,
    label: `${routeName}: ${d.label}`,
    transport,
    method: d.method,
    target: d.target,
    headers: f.head,
    body: d.body,
    writes,
    gapsMs: gaps,
    expectAnswer: complete,
    expectRefusal: refusing,
    expectAuthRefusal: authRefusal,
    repeat: d.replay === true ? 2 : 1,
    mutations,
  };
}

/** Byte-level damage to a body. */
export function mutateBytes(b: Buffer, rng: Rng): Buffer {
  if (b.length === 0) return rng.bytes(rng.size(1, 64));
  switch (rng.int(0, 5)) {
    case 0:
      return b.subarray(0, rng.int(0, b.length - 1));
    case 1: {
      const c = Buffer.from(b);
      for (let i = rng.int(1, 8); i > 0; i--) c[rng.int(0, c.length - 1)] = rng.int(0, 255);
      return c;
    }
    case 2: {
      const at = rng.int(0, b.length);
      return Buffer.concat([b.subarray(0, at), rng.bytes(rng.size(1, 100)), b.subarray(at)]);
    }
    case 3: {
      const at = rng.int(0, b.length - 1);
      return Buffer.concat([b.subarray(0, at), b.subarray(rng.int(at, b.length))]);
    }
    case 4:
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b]);
    default:
      return Buffer.concat([b, b]);
  }
}

/** A printable one-line description of a case (bodies and huge values abbreviated). */
export function describeCase(c: HttpCase): string {
  const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);
  const body =
    c.body === undefined
      ? 'no body'
      : `body ${c.body.length} B ${JSON.stringify(clip(c.body.toString('latin1'), 160))}`;
  const hs = c.headers
    .filter(([k]) => !/^x-f\d+$/.test(k))
    .map(([k, v]) => `${clip(k, 40)}: ${clip(v, 80)}`)
    .join(' | ');
  return `#${c.index} [${c.label}] ${c.transport} ${JSON.stringify(clip(c.method, 40))} ${JSON.stringify(clip(c.target, 200))} → node ${c.node}; ${hs}; ${body}; mutations: ${c.mutations.join(',') || 'none'}`;
}

// ---- helpers for the route catalogues

/** A body rendered to bytes (see json.ts for the markers). */
export function bytesOf(v: unknown, rng: Rng): Buffer {
  return Buffer.from(render(v, { escapeKeys: rng.bool(0.2), spaced: rng.bool(0.2) }, rng), 'utf8');
}

/** A body that is never valid anywhere, mixed into every route's bodies. */
export function anyInvalidBody(rng: Rng): Buffer {
  return universallyInvalid(rng);
}

/** Default headers of a JSON request. */
export function jsonHeaders(rng: Rng, extra: [string, string][] = []): [string, string][] {
  const h: [string, string][] = [['host', '127.0.0.1']];
  if (rng.bool(0.9)) h.push(['content-type', rng.bool(0.9) ? 'application/json' : rng.pick(CONTENT_TYPES)]);
  if (rng.bool(0.3)) h.push(['connection', rng.pick(['keep-alive', 'close'])]);
  return [...h, ...extra];
}

/** The request's view for a model that wants the header values. */
export { headerValues };
