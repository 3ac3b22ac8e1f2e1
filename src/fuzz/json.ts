/**
 * Building blocks of fuzzed bodies: JSON texts with what `JSON.stringify` cannot write (number literals such
 * as `1e400`, duplicate keys, escaped key spellings, nesting hundreds of thousands deep), strings with
 * control characters, lone surrogates and every script, and bytes that are not JSON (or not UTF-8) at all.
 *
 * A body is built as a tree of plain values plus three marker classes (`Lit`, `Deep`, `Entries`) and
 * rendered to text once; whether the result is a valid request is decided later on the rendered bytes (see
 * model.ts), so a generator here never has to be right about validity.
 */
import type { Rng } from './rng.js';

/** A literal JSON text emitted as is (e.g. `1e400`, `-0`, `"\ud800"`). */
export class Lit {
  constructor(readonly text: string) {}
}

/** `depth` nested containers around `inner`: `[[[...]]]` or `{"a":{"a":...}}`, rendered without recursion. */
export class Deep {
  constructor(
    readonly depth: number,
    readonly kind: 'array' | 'object' | 'mixed',
    readonly inner: unknown = null,
  ) {}
}

/** An object given as entries: keys may repeat, and may be spelled with escapes. */
export class Entries {
  constructor(readonly entries: readonly (readonly [string, unknown])[]) {}
}

export interface RenderOptions {
  /** Escape some key characters as \uXXXX (the parsed key is unchanged). */
  readonly escapeKeys?: boolean;
  /** Whitespace between tokens. */
  readonly spaced?: boolean;
}

function renderKey(k: string, o: RenderOptions, rng: Rng | undefined): string {
  if (!o.escapeKeys || rng === undefined || !rng.bool(0.3)) return JSON.stringify(k);
  let out = '"';
  for (const ch of k) {
    const code = ch.codePointAt(0) as number;
    if (code < 0x80 && rng.bool(0.4)) out += '\\u' + code.toString(16).padStart(4, '0');
    else out += JSON.stringify(ch).slice(1, -1);
  }
  return out + '"';
}

/** Renders a body tree to JSON text (see the marker classes). */
export function render(v: unknown, o: RenderOptions = {}, rng?: Rng): string {
  const sp = o.spaced === true ? ' ' : '';
  const parts: string[] = [];
  const walk = (x: unknown): void => {
    if (x instanceof Lit) {
      parts.push(x.text);
    } else if (x instanceof Deep) {
      const open = x.kind === 'array' ? '[' : x.kind === 'object' ? '{"a":' : '[{"a":';
      const close = x.kind === 'array' ? ']' : x.kind === 'object' ? '}' : '}]';
      const n = x.kind === 'mixed' ? Math.ceil(x.depth / 2) : x.depth;
      parts.push(open.repeat(n));
      walk(x.inner);
      parts.push(close.repeat(n));
    } else if (x instanceof Entries) {
      parts.push('{' + sp);
      x.entries.forEach(([k, val], i) => {
        if (i > 0) parts.push(',' + sp);
        parts.push(renderKey(k, o, rng) + sp + ':' + sp);
        walk(val);
      });
      parts.push(sp + '}');
    } else if (Array.isArray(x)) {
      parts.push('[' + sp);
      x.forEach((val, i) => {
        if (i > 0) parts.push(',' + sp);
        walk(val);
      });
      parts.push(sp + ']');
    } else if (x !== null && typeof x === 'object') {
      walk(new Entries(Object.entries(x)));
    } else if (x === undefined) {
      parts.push('null');
    } else {
      parts.push(JSON.stringify(x));
    }
  };
  walk(v);
  return parts.join('');
}

/** Keys found in the request bodies of every mode, plus prototype names and a few oddities. */
export const FIELD_NAMES = [
  'value',
  'key',
  'version',
  'if_version',
  'if_value',
  'request_id',
  'compare',
  'success',
  'failure',
  'op',
  'target',
  'entries',
  'ts',
  'wall',
  'logical',
  'node',
  'deleted',
  'buckets',
  'summary',
  'write',
  'origin',
  'clock',
  'vc',
  'inc',
  'socket-address',
  'causal-metadata',
  'peers',
  'username',
  'password',
  'name',
  'text',
  'role',
  'prefix',
  'read',
  'no_password',
  'drop',
  'delayMs',
] as const;

export const PROTO_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  '__defineGetter__',
  'isPrototypeOf',
] as const;

const NUMBER_LITERALS = [
  '0',
  '-0',
  '1',
  '-1',
  '1.5',
  '-2.5e-3',
  '1e400',
  '-1e400',
  '1e-400',
  '9007199254740993',
  '-9007199254740993',
  '123456789012345678901234567890123456789',
  '0.1e1',
  '1E+2',
  '4294967296',
  '2147483648',
  '0.0000000000000000000000000000001',
];

const WEIRD_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  '\ud83d\ude00',
  '\u202e\u0644\u0627',
  'e\u0301\u0301\u0301',
  '\ufeff',
  '\uffff',
  '../../etc/passwd',
  '%00',
  '%zz',
  '\\',
  '"',
  '\r\n\r\n',
  'null',
  'true',
  '0',
  '-1',
  'NaN',
  'Infinity',
  '__proto__',
  'constructor',
  ':',
  'client:',
  ':1',
  'a:b',
  'x:99999999999999999',
  '127.0.0.1:0',
  '127.0.0.1:65536',
  'host:port',
  '[::1]:',
  'ünïcödé',
  '日本語のキー',
  '🔑'.repeat(20),
];

/** A string of 0..max characters from a random mix of alphabets (ASCII, controls, surrogates, scripts). */
export function randomString(rng: Rng, max = 40): string {
  if (rng.bool(0.25)) return rng.pick(WEIRD_STRINGS);
  const n = rng.size(0, max);
  const alphabet = rng.int(0, 5);
  let s = '';
  for (let i = 0; i < n; i++) {
    switch (alphabet) {
      case 0:
        s += String.fromCharCode(rng.int(0x61, 0x7a));
        break;
      case 1:
        s += String.fromCharCode(rng.int(0x20, 0x7e));
        break;
      case 2:
        s += String.fromCharCode(rng.int(0, 0x7f));
        break;
      case 3:
        s += String.fromCharCode(rng.int(0x80, 0xffff));
        break;
      case 4:
        s += String.fromCodePoint(rng.int(0x10000, 0x10ffff));
        break;
      default:
        s += rng.pick(['a', '/', '%', '.', ':', ' ', '\t', '\n', '"', '\\', '\u0000', '\ud800', 'é', '字']);
    }
  }
  return s;
}

/** A string without CR, LF and NUL (which an HTTP client cannot put in a header value). */
export function headerSafe(s: string): string {
  return s
    .replace(/[\r\n]/g, '')
    .split('\u0000')
    .join('');
}

/** A random JSON value of bounded size (the markers included), with keys from FIELD_NAMES and friends. */
export function anyJson(rng: Rng, depth = 3): unknown {
  const r = rng.int(0, depth <= 0 ? 5 : 9);
  switch (r) {
    case 0:
      return null;
    case 1:
      return rng.bool();
    case 2:
      return new Lit(rng.pick(NUMBER_LITERALS));
    case 3:
      return rng.int(-1000, 1_000_000);
    case 4:
    case 5:
      return randomString(rng);
    case 6:
    case 7: {
      const n = rng.size(0, 6);
      return Array.from({ length: n }, () => anyJson(rng, depth - 1));
    }
    default: {
      const n = rng.size(0, 6);
      const entries: [string, unknown][] = [];
      for (let i = 0; i < n; i++) entries.push([anyKey(rng), anyJson(rng, depth - 1)]);
      return new Entries(entries);
    }
  }
}

export function anyKey(rng: Rng): string {
  return rng.weighted<() => string>([
    [6, () => rng.pick(FIELD_NAMES)],
    [2, () => rng.pick(PROTO_KEYS)],
    [2, () => randomString(rng, 12)],
  ])();
}

/** A JSON value of another type than the field expects, or an odd one of the same type. */
export function wrongTyped(rng: Rng): unknown {
  return rng.weighted<() => unknown>([
    [2, () => null],
    [2, () => rng.bool()],
    [3, () => new Lit(rng.pick(NUMBER_LITERALS))],
    [3, () => randomString(rng)],
    [2, () => []],
    [2, () => ({})],
    [2, () => anyJson(rng, 2)],
    [1, () => new Deep(rng.int(2, 40), rng.pick(['array', 'object', 'mixed'] as const))],
  ])();
}

/** Nesting far beyond any limit (1,001 to 300,000 levels), or around the limits (500 to 1,100). */
export function deepValue(rng: Rng, inner: unknown = null): Deep {
  const depth = rng.weighted<() => number>([
    [6, () => rng.size(1001, 30_000)],
    [1, () => rng.size(30_000, 300_000)],
    [3, () => rng.int(500, 1100)],
  ])();
  return new Deep(depth, rng.pick(['array', 'object', 'mixed'] as const), inner);
}

/** Bytes that are not a JSON text: random, invalid UTF-8, or JSON with a syntax error. */
export function notJson(rng: Rng): Buffer {
  const kind = rng.int(0, 9);
  switch (kind) {
    case 0:
      return rng.bytes(rng.size(1, 4096));
    case 1:
      // Invalid UTF-8: stray continuation bytes, overlong forms, surrogates encoded, 0xFE/0xFF.
      return Buffer.concat(
        Array.from({ length: rng.size(1, 64) }, () =>
          Buffer.from(
            rng.pick([[0x80], [0xbf], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xfe], [0xff], [0xf8]]),
          ),
        ),
      );
    case 2: {
      // A JSON text cut short.
      const t = render(anyJson(rng, 3));
      return Buffer.from(t.length > 1 ? t.slice(0, rng.int(1, t.length - 1)) : '{');
    }
    case 3:
      return Buffer.from(
        rng.pick([
          "{'value': 1}",
          '{value: 1}',
          '{"value": 1,}',
          '[1, 2,]',
          '{"value": NaN}',
          '{"value": Infinity}',
          '{"value": undefined}',
          '{"value": 01}',
          '{"value": .5}',
          '{"value": 0x10}',
          '{"value": "\u0001"}',
          '{"value": "a\nb"}',
          '{"value" 1}',
          '{"value": 1}}',
          '{{}}',
          '/* c */ {"value": 1}',
          '{"value": 1} // c',
          '\ufeff\ufeff{}',
          '{"a":"\\x41"}',
          '{"a":"\\u12"}',
          '"unterminated',
          'tru',
          'nul',
          '--1',
          '+1',
          '{"value":1}{"value":2}',
          '}',
          ']',
        ]),
      );
    case 4:
      return Buffer.from('{'.repeat(rng.size(1, 30_000)));
    case 5:
      return Buffer.from('['.repeat(rng.size(1, 30_000)));
    case 6:
      return Buffer.concat([
        Buffer.from(render(anyJson(rng, 2))),
        Buffer.from(rng.pick([',', '}', ']', 'x', '\u0000'])),
      ]);
    case 7:
      return Buffer.from('\u0000' + render(anyJson(rng, 2)));
    case 8:
      return Buffer.from('value=1&key=a', 'latin1');
    default:
      return Buffer.from(`<?xml version="1.0"?><value>${randomString(rng)}</value>`);
  }
}

/**
 * A body no route of any mode takes as valid, whatever the method: not JSON, or a JSON scalar (never
 * null and never the empty string, which some routes read as "no body"), or an array.
 */
export function universallyInvalid(rng: Rng): Buffer {
  return rng.weighted<() => Buffer>([
    [5, () => notJson(rng)],
    [1, () => Buffer.from(rng.pick(['true', 'false', '0', '-1', '1e400', '"x"', '" "', '"null"', '"{}"']))],
    [2, () => Buffer.from(render(Array.from({ length: rng.size(0, 4) }, () => anyJson(rng, 2))))],
    [1, () => Buffer.from(render(new Deep(rng.size(2, 30_000), 'array')))],
    [1, () => Buffer.from(JSON.stringify(randomString(rng, 200) + 'x'))],
  ])();
}
