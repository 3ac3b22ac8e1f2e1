/**
 * What a node could make of a generated request, decided conservatively: the fuzzer's own reading of the
 * contract (../shared/api.md, docs/security.md) and of each route's documented rules, written independently
 * of the server code. A generated request is sent only if, under *every* interpretation the server might
 * choose (each way of decoding its path, each body framing, JSON or plain text), it is not a valid
 * state-changing request — so that "no state change" can be asserted after the run. When unsure, a
 * predicate says "may be valid" and the generator draws again.
 */

/** Deepest container nesting a JSON body may have (the servers answer 400 beyond it). */
export const MAX_JSON_DEPTH = 1000;
/** raft mode's limit on a value's nesting (src/kv/json.ts jsonError). */
export const RAFT_VALUE_DEPTH = 512;
export const MAX_KEY_BYTES = 1024;
export const MAX_VALUE_BYTES = 1024 * 1024;
export const CAUSAL_MAX_KEY_CHARS = 50;

export type Credential = 'none' | 'garbage' | 'valid';

/** The ways a body's bytes may reach a handler: nothing, a parsed JSON value, or a plain string. */
export interface BodyView {
  readonly bytes: Buffer;
  /** Whitespace only (or nothing): handlers see no body. */
  readonly empty: boolean;
  readonly json: { readonly ok: true; readonly value: unknown } | { readonly ok: false };
  readonly text: string;
}

export function bodyView(bytes: Buffer): BodyView {
  let text = bytes.toString('utf8');
  const empty = text.trim() === '';
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let json: BodyView['json'] = { ok: false };
  if (!empty) {
    try {
      json = { ok: true, value: JSON.parse(text) as unknown };
    } catch {
      json = { ok: false };
    }
  }
  return { bytes, empty, json, text };
}

/**
 * Every value a handler might be given for this body: undefined (no body), the JSON value, and the text
 * itself (a `text/plain` body, whatever the request claimed).
 */
export function bodyValues(views: readonly BodyView[]): unknown[] {
  const out: unknown[] = [];
  for (const v of views) {
    if (v.empty) {
      out.push(undefined, '');
      continue;
    }
    if (v.json.ok) out.push(v.json.value);
    out.push(v.text);
  }
  return out;
}

/** A request path matched against a route pattern, with its parameters decoded. */
export interface Match {
  readonly pattern: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: ReadonlyMap<string, readonly string[]>;
}

function lenientDecode(s: string, keepSlash: boolean): string {
  return s.replace(/%([0-9a-fA-F]{2})(?:%([0-9a-fA-F]{2}))*/g, (run) => {
    // Decode the run as UTF-8 (invalid sequences become U+FFFD, as a lenient decoder would).
    let out = Buffer.from(run.replace(/%/g, ''), 'hex').toString('utf8');
    if (keepSlash) out = out.replace(/\//g, '%2F').replace(/\?/g, '%3F').replace(/#/g, '%23');
    return out;
  });
}

/** The path-and-query strings a server might route this request target as. */
export function pathCandidates(target: string): string[] {
  const out = new Set<string>();
  let t = target;
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/]*/.exec(t);
  if (abs !== null) {
    out.add(t);
    t = t.slice(abs[0].length) || '/';
  }
  const base = [t, t.split('#')[0] as string];
  for (const b of base) {
    const q = b.indexOf('?');
    const path = q < 0 ? b : b.slice(0, q);
    const query = q < 0 ? '' : b.slice(q);
    for (const p of [path, path.replace(/\/{2,}/g, '/'), path.length > 1 ? path.replace(/\/$/, '') : path]) {
      out.add(p + query);
      out.add(lenientDecode(p, true) + query);
      out.add(lenientDecode(p, false) + query);
    }
  }
  return [...out];
}

function parseQuery(q: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  if (q === '') return m;
  for (const part of q.split('&')) {
    const eq = part.indexOf('=');
    const k = lenientDecode((eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, ' '), false);
    const v = lenientDecode((eq < 0 ? '' : part.slice(eq + 1)).replace(/\+/g, ' '), false);
    const list = m.get(k) ?? [];
    list.push(v);
    m.set(k, list);
  }
  return m;
}

/**
 * Matches one candidate path against patterns such as `/kvs/*` or `/chat/rooms/:room/join` (static parts
 * case-insensitively, to stay on the safe side), decoding the parameters.
 */
export function matchPath(candidate: string, patterns: readonly string[]): Match[] {
  const q = candidate.indexOf('?');
  const path = q < 0 ? candidate : candidate.slice(0, q);
  const query = parseQuery(q < 0 ? '' : candidate.slice(q + 1));
  const out: Match[] = [];
  const segs = path.split('/');
  for (const pattern of patterns) {
    const ps = pattern.split('/');
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < ps.length; i++) {
      const p = ps[i] as string;
      if (p === '*') {
        params['*'] = lenientDecode(segs.slice(i).join('/'), false);
        break;
      }
      const s = segs[i];
      if (s === undefined) {
        ok = false;
        break;
      }
      if (p.startsWith(':')) {
        if (s === '') {
          ok = false;
          break;
        }
        params[p.slice(1)] = lenientDecode(s, false);
      } else if (p.toLowerCase() !== s.toLowerCase()) {
        ok = false;
        break;
      }
      if (i === ps.length - 1 && segs.length !== ps.length) ok = false;
    }
    if (ps[ps.length - 1] === '*' && segs.length < ps.length - 1) ok = false;
    if (ok) out.push({ pattern, params, query });
  }
  return out;
}

/** Longest request line plus headers a node reads (Node's default maxHeaderSize): longer is a 431. */
export const MAX_HEAD_BYTES = 16 * 1024;

/** Every route a request target might reach. */
export function classify(target: string, patterns: readonly string[]): Match[] {
  if (target.length > MAX_HEAD_BYTES) return [];
  const seen = new Set<string>();
  const out: Match[] = [];
  for (const c of pathCandidates(target)) {
    for (const m of matchPath(c, patterns)) {
      const id = m.pattern + '\u0000' + JSON.stringify(m.params);
      if (!seen.has(id)) {
        seen.add(id);
        out.push(m);
      }
    }
  }
  return out;
}

/**
 * The routes a request target certainly reaches, matched as the router does it (find-my-way): an
 * absolute-form `http(s)://host` prefix stripped, the path cut at `?` or `#`, percent-escapes decoded
 * (`%2F` excepted), static parts compared with their case, no slash normalisation. Narrower than
 * classify(), which errs the other way for the state model.
 */
export function routeExactly(target: string, patterns: readonly string[]): Match[] {
  if (target.length > MAX_HEAD_BYTES) return [];
  let t = target;
  const abs = /^https?:\/\/.*?\//.exec(t);
  if (abs !== null) t = '/' + t.slice(abs[0].length);
  const cut = t.search(/[?#]/);
  const path = cut < 0 ? t : t.slice(0, cut);
  if (!path.startsWith('/')) return [];
  const decoded = lenientDecode(path, true);
  const out: Match[] = [];
  for (const m of matchPath(decoded, patterns)) {
    const statics = m.pattern.split('/').filter((p) => p !== '*' && !p.startsWith(':'));
    if (statics.every((p) => decoded.split('/').includes(p))) out.push(m);
  }
  return out;
}

// ---- value predicates shared by the modes' models

export function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function own(o: Record<string, unknown>, k: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined;
}

const depths = new WeakMap<object, number>();

/** Container nesting of a parsed value (iterative: values may be nested 300,000 deep; memoised). */
export function depthOf(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  const known = depths.get(v);
  if (known !== undefined) return known;
  let max = 0;
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length > 0) {
    const [x, d] = stack.pop() as [unknown, number];
    if (x === null || typeof x !== 'object') continue;
    const here = d + 1;
    if (here > max) max = here;
    for (const c of Array.isArray(x) ? x : Object.values(x)) stack.push([c, here]);
  }
  depths.set(v, max);
  return max;
}

export function hasNonFinite(v: unknown): boolean {
  const stack: unknown[] = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x === 'number' && !Number.isFinite(x)) return true;
    if (x !== null && typeof x === 'object') for (const c of Array.isArray(x) ? x : Object.values(x)) stack.push(c);
  }
  return false;
}

/** JSON size in bytes, or Infinity when it cannot be serialised (too deep). */
export function jsonBytes(v: unknown): number {
  if (depthOf(v) > MAX_JSON_DEPTH) return Infinity;
  try {
    return Buffer.byteLength(JSON.stringify(v) ?? '', 'utf8');
  } catch {
    return Infinity;
  }
}

export function isSafeNat(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function keyMayBeValid(key: string, maxBytes = MAX_KEY_BYTES): boolean {
  return key.length > 0 && Buffer.byteLength(key, 'utf8') <= maxBytes;
}

/** A body value within the nesting limit (deeper bodies are refused before any handler). */
export function withinDepth(v: unknown): boolean {
  return depthOf(v) <= MAX_JSON_DEPTH;
}

/** `{"value": V, ...}` as the quorum, eventual and causal modes read it. */
export function putBodyMayBeValid(body: unknown): boolean {
  if (!isObj(body) || !withinDepth(body)) return false;
  const v = own(body, 'value');
  return v !== undefined && jsonBytes(v) <= MAX_VALUE_BYTES;
}

/** raft's `request_id`: absent, null, or `<client>:<seq>`. */
export function requestIdMayBeValid(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (typeof v !== 'string') return false;
  const i = v.lastIndexOf(':');
  return i > 0 && /^[0-9]{1,15}$/.test(v.slice(i + 1));
}

/** The causal mode's metadata (a vector clock), or an error. */
export function parseClockModel(raw: unknown): Record<string, number> | 'error' {
  if (raw === undefined || raw === null || raw === '') return {};
  if (typeof raw === 'string') {
    let d: unknown;
    try {
      d = JSON.parse(raw);
    } catch {
      return 'error';
    }
    if (typeof d === 'string') return 'error';
    return parseClockModel(d);
  }
  if (!isObj(raw)) return 'error';
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!isSafeNat(v)) return 'error';
    if ((v as number) > 0) out[k] = v as number;
  }
  return out;
}

export function isSocketAddressModel(s: unknown): boolean {
  if (typeof s !== 'string') return false;
  const m = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/.exec(s);
  return m !== null && Number(m[2]) > 0 && Number(m[2]) < 65536;
}

export function hlcMayBeValid(x: unknown): boolean {
  if (x === null || typeof x !== 'object') return false;
  const o = x as Record<string, unknown>;
  return isSafeNat(o.wall) && isSafeNat(o.logical) && typeof o.node === 'string' && o.node.length > 0;
}

/** A header's values (names compared case-insensitively, trimmed). */
export function headerValues(headers: readonly (readonly [string, string])[], name: string): string[] {
  const out: string[] = [];
  for (const [k, v] of headers) if (k.trim().toLowerCase() === name) out.push(v.trim());
  return out;
}
