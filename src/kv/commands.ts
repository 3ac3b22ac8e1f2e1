/**
 * Commands of the replicated key-value state machine and their log-entry encoding.
 *
 * Values always travel as JSON text: a JSON value then round-trips exactly (key order, `__proto__` keys,
 * integers vs floats) and every replica parses the same text into the same value. Two encodings:
 *
 * - put and delete (the hot path) are a compact binary record, see `encodeKeyCommand`: the marker byte
 *   0xC1 (a byte msgpack never uses), the op, a flag byte, then length-prefixed UTF-8 strings and
 *   unsigned LEB128 integers;
 * - transactions are a msgpack map with short field names (`t`, `c`, `s`, `f`, values in `v`/`cv`);
 * - auth commands (users, roles, sessions, the enabled flag) are msgpack maps too, see `encodeAuthCommand`;
 * - a key command made on behalf of a user (`as-user`, auth on) is binary: the user, then the command's
 *   own bytes, see `encodeAsUser`.
 *
 * `decodeCommand` tells them apart by the first byte, and accepts put/delete maps in the msgpack form
 * too (how logs written before the binary form hold them).
 */
import { pack, unpack } from '../util/msgpack.js';
import { jsonError, type JsonValue } from './json.js';

/** `"<client-id>:<seq>"` of the HTTP contract, split. `seq` is a non-negative safe integer. */
export interface RequestId {
  readonly client: string;
  readonly seq: number;
}

/** Preconditions of a single-key write. Both may be given; both must then hold. */
export interface WriteConditions {
  /** 0: the key must not exist; n > 0: the key must exist with this version. */
  readonly ifVersion?: number;
  /** The key must exist and its value must deep-equal this (`hasIfValue` distinguishes `null`). */
  readonly ifValue?: JsonValue;
  readonly hasIfValue?: boolean;
}

export interface PutCommand extends WriteConditions {
  readonly op: 'put';
  readonly key: string;
  readonly value: JsonValue;
  readonly requestId?: RequestId;
}

export interface DeleteCommand extends WriteConditions {
  readonly op: 'delete';
  readonly key: string;
  readonly requestId?: RequestId;
}

export type CompareTarget = 'version' | 'value' | 'revision' | 'exists';
export type CompareOp = '==' | '!=' | '<' | '>';

/**
 * One comparison of a transaction. For a missing key: `version`, `revision` compare as 0, `exists` as
 * false, and `value` is "absent": `==` is false and `!=` is true whatever `value` is. `<`/`>` compare
 * numbers with numbers and strings with strings (UTF-16 order); any other pairing is false.
 */
export interface Compare {
  readonly key: string;
  readonly target: CompareTarget;
  readonly op: CompareOp;
  readonly value: JsonValue;
}

export type TxnOp =
  | { readonly op: 'put'; readonly key: string; readonly value: JsonValue }
  | { readonly op: 'delete'; readonly key: string }
  | { readonly op: 'get'; readonly key: string };

/** All compares hold → `success` ops run, in order; otherwise `failure` ops. One log entry, one revision. */
export interface TxnCommand {
  readonly op: 'txn';
  readonly compare: readonly Compare[];
  readonly success: readonly TxnOp[];
  readonly failure: readonly TxnOp[];
  readonly requestId?: RequestId;
}

/** The commands on keys (the only ones before users and roles existed). */
export type Command = PutCommand | DeleteCommand | TxnCommand;

/** A role's right on the keys starting with `prefix` (`""`: every key). */
export interface Permission {
  readonly prefix: string;
  readonly read: boolean;
  readonly write: boolean;
}

/** A password as the log knows it: its scrypt salt and hash, computed on the leader before proposing. */
export interface PasswordSecret {
  readonly salt: Uint8Array;
  readonly hash: Uint8Array;
}

/**
 * A change to the users, roles, sessions or the enabled flag (see auth.ts). A user without `secret` has no
 * password: it can only be authenticated by a client certificate whose CN is its name.
 */
export type AuthAction =
  | { readonly kind: 'user-add'; readonly name: string; readonly secret?: PasswordSecret }
  | { readonly kind: 'user-delete'; readonly name: string }
  | { readonly kind: 'user-password'; readonly name: string; readonly secret?: PasswordSecret }
  | { readonly kind: 'user-grant'; readonly name: string; readonly role: string }
  | { readonly kind: 'user-revoke'; readonly name: string; readonly role: string }
  | { readonly kind: 'role-add'; readonly name: string }
  | { readonly kind: 'role-delete'; readonly name: string }
  | { readonly kind: 'role-grant'; readonly name: string; readonly permission: Permission }
  | { readonly kind: 'role-revoke'; readonly name: string; readonly prefix: string }
  | { readonly kind: 'enable' }
  | { readonly kind: 'disable' }
  /** A bearer token issued to `name`: the log holds its SHA-256 (`session`), valid until `expires` (ms). */
  | {
      readonly kind: 'login';
      readonly name: string;
      readonly session: string;
      readonly time: number;
      readonly expires: number;
    }
  | { readonly kind: 'logout'; readonly session: string };

/**
 * A change to the auth state. `by` is the user the leader authenticated (absent when auth was off): when
 * auth is on at apply time, management needs the root role (login and logout need no `by`).
 */
export interface AuthCommand {
  readonly op: 'auth';
  readonly action: AuthAction;
  readonly by?: string;
}

/**
 * A key command proposed on behalf of an authenticated user. When auth is on at apply time, the state
 * machine checks the user's permissions again, so a revocation ordered before the write always wins.
 */
export interface AsUserCommand {
  readonly op: 'as-user';
  readonly user: string;
  readonly command: Command;
}

/** Everything a log entry of the key-value store may hold. */
export type LogCommand = Command | AuthCommand | AsUserCommand;

type Wire = Record<string, unknown>;

function encodeRequestId(w: Wire, id: RequestId | undefined): void {
  if (id !== undefined) {
    w.rc = id.client;
    w.rs = id.seq;
  }
}

function encodeOp(op: TxnOp): Wire {
  if (op.op === 'put') return { o: 'p', k: op.key, v: JSON.stringify(op.value) };
  return { o: op.op === 'delete' ? 'd' : 'g', k: op.key };
}

/** Encodes a command as the bytes of a log entry. */
export function encodeCommand(cmd: LogCommand): Uint8Array {
  if (cmd.op === 'put' || cmd.op === 'delete') return encodeKeyCommand(cmd);
  if (cmd.op === 'auth') return encodeAuthCommand(cmd);
  if (cmd.op === 'as-user') return encodeAsUser(cmd);
  const w: Wire = { t: 't' };
  w.c = cmd.compare.map((c) => ({ k: c.key, g: c.target, o: c.op, cv: JSON.stringify(c.value) }));
  w.s = cmd.success.map(encodeOp);
  w.f = cmd.failure.map(encodeOp);
  encodeRequestId(w, cmd.requestId);
  return pack(w);
}

/** First byte of the binary put/delete form (0xC1 is "never used" in msgpack). */
const BINARY_MARKER = 0xc1;
const OP_PUT = 1;
const OP_DELETE = 2;
const OP_AS_USER = 3;
const HAS_REQUEST_ID = 1;
const HAS_IF_VERSION = 2;
const HAS_IF_VALUE = 4;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, off: number, n: number): number {
  while (n >= 0x80) {
    buf[off++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[off++] = n;
  return off;
}

/**
 * Binary put/delete:
 *
 *   u8 0xC1 | u8 op (1 put, 2 delete) | u8 flags (1 request id, 2 if_version, 4 if_value)
 *   str key | [put] str value JSON | [2] uint if_version | [4] str if_value JSON | [1] str client, uint seq
 *
 * where `str` is a uint byte length followed by UTF-8 bytes and `uint` is unsigned LEB128.
 */
function encodeKeyCommand(cmd: PutCommand | DeleteCommand): Uint8Array {
  const valueText = cmd.op === 'put' ? JSON.stringify(cmd.value) : '';
  const hasIfValue = cmd.hasIfValue === true || cmd.ifValue !== undefined;
  const ifValueText = hasIfValue ? JSON.stringify(cmd.ifValue ?? null) : '';
  const rid = cmd.requestId;
  const keyLen = Buffer.byteLength(cmd.key, 'utf8');
  let size = 3 + varintSize(keyLen) + keyLen;
  let valueLen = 0;
  if (cmd.op === 'put') {
    valueLen = Buffer.byteLength(valueText, 'utf8');
    size += varintSize(valueLen) + valueLen;
  }
  if (cmd.ifVersion !== undefined) size += varintSize(cmd.ifVersion);
  let ifValueLen = 0;
  if (hasIfValue) {
    ifValueLen = Buffer.byteLength(ifValueText, 'utf8');
    size += varintSize(ifValueLen) + ifValueLen;
  }
  let clientLen = 0;
  if (rid !== undefined) {
    clientLen = Buffer.byteLength(rid.client, 'utf8');
    size += varintSize(clientLen) + clientLen + varintSize(rid.seq);
  }
  const buf = Buffer.allocUnsafe(size);
  buf[0] = BINARY_MARKER;
  buf[1] = cmd.op === 'put' ? OP_PUT : OP_DELETE;
  buf[2] =
    (rid !== undefined ? HAS_REQUEST_ID : 0) |
    (cmd.ifVersion !== undefined ? HAS_IF_VERSION : 0) |
    (hasIfValue ? HAS_IF_VALUE : 0);
  let off = writeVarint(buf, 3, keyLen);
  off += buf.write(cmd.key, off, 'utf8');
  if (cmd.op === 'put') {
    off = writeVarint(buf, off, valueLen);
    off += buf.write(valueText, off, 'utf8');
  }
  if (cmd.ifVersion !== undefined) off = writeVarint(buf, off, cmd.ifVersion);
  if (hasIfValue) {
    off = writeVarint(buf, off, ifValueLen);
    off += buf.write(ifValueText, off, 'utf8');
  }
  if (rid !== undefined) {
    off = writeVarint(buf, off, clientLen);
    off += buf.write(rid.client, off, 'utf8');
    off = writeVarint(buf, off, rid.seq);
  }
  if (off !== size) throw new Error(`command encoding wrote ${off} of ${size} bytes`);
  return buf;
}

/** Reads the binary form, checking every length against the buffer. */
class BinaryReader {
  private off = 3;

  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.off === this.buf.length;
  }

  /** The bytes not read yet. */
  rest(): Buffer {
    const r = this.buf.subarray(this.off);
    this.off = this.buf.length;
    return r;
  }

  uint(what: string): number {
    let n = 0;
    let scale = 1;
    for (;;) {
      if (this.off >= this.buf.length) fail(`${what} is truncated`);
      const b = this.buf[this.off++];
      n += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 0x80;
      if (scale > 2 ** 49) fail(`${what} is too large`);
    }
    if (!Number.isSafeInteger(n)) fail(`${what} is too large`);
    return n;
  }

  str(what: string): string {
    const len = this.uint(`${what} length`);
    if (len > this.buf.length - this.off) fail(`${what} is truncated`);
    const s = this.buf.toString('utf8', this.off, this.off + len);
    this.off += len;
    return s;
  }
}

function parseJsonText(text: string, what: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return fail(`${what} is not valid JSON`);
  }
}

function decodeKeyCommand(bytes: Uint8Array): PutCommand | DeleteCommand | AsUserCommand {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 3) fail('command is truncated');
  const op = buf[1];
  const flags = buf[2];
  if (op === OP_AS_USER) return decodeAsUser(buf);
  if (op !== OP_PUT && op !== OP_DELETE) fail('unknown command type');
  if ((flags & ~(HAS_REQUEST_ID | HAS_IF_VERSION | HAS_IF_VALUE)) !== 0) fail('unknown command flags');
  const r = new BinaryReader(buf);
  const key = r.str('key');
  if (key.length === 0) fail('key must not be empty');
  const value = op === OP_PUT ? parseJsonText(r.str('value'), 'value') : undefined;
  const c: { ifVersion?: number; ifValue?: JsonValue; hasIfValue?: boolean; requestId?: RequestId } = {};
  if ((flags & HAS_IF_VERSION) !== 0) c.ifVersion = r.uint('if_version');
  if ((flags & HAS_IF_VALUE) !== 0) {
    c.ifValue = parseJsonText(r.str('if_value'), 'if_value');
    c.hasIfValue = true;
  }
  if ((flags & HAS_REQUEST_ID) !== 0) {
    const client = r.str('request id client');
    if (client.length === 0) fail('request id client must not be empty');
    c.requestId = { client, seq: r.uint('request id seq') };
  }
  if (!r.done) fail('trailing bytes after the command');
  if (value === undefined) return { op: 'delete', key, ...c };
  return { op: 'put', key, value, ...c };
}

/** A log entry whose bytes are not a valid command. */
export class InvalidCommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidCommandError';
  }
}

function fail(message: string): never {
  throw new InvalidCommandError(message);
}

function isObject(x: unknown): x is Wire {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
}

function has(w: Wire, field: string): boolean {
  return Object.prototype.hasOwnProperty.call(w, field);
}

function str(w: Wire, field: string, what: string): string {
  const v = has(w, field) ? w[field] : undefined;
  if (typeof v !== 'string') fail(`${what} must be a string`);
  return v;
}

function key(w: Wire): string {
  const k = str(w, 'k', 'key');
  if (k.length === 0) fail('key must not be empty');
  return k;
}

function jsonText(w: Wire, field: string, what: string): JsonValue {
  return parseJsonText(str(w, field, what), what);
}

function nonNegInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${what} must be a non-negative integer`);
  return v;
}

function decodeRequestId(w: Wire): RequestId | undefined {
  if (!has(w, 'rc') && !has(w, 'rs')) return undefined;
  const client = str(w, 'rc', 'request id client');
  if (client.length === 0) fail('request id client must not be empty');
  return { client, seq: nonNegInt(w.rs, 'request id seq') };
}

function decodeConditions(w: Wire): WriteConditions {
  const c: { ifVersion?: number; ifValue?: JsonValue; hasIfValue?: boolean } = {};
  if (has(w, 'ic')) c.ifVersion = nonNegInt(w.ic, 'if_version');
  if (has(w, 'iv')) {
    c.ifValue = jsonText(w, 'iv', 'if_value');
    c.hasIfValue = true;
  }
  return c;
}

function decodeOp(x: unknown): TxnOp {
  if (!isObject(x)) fail('txn op must be a map');
  const k = key(x);
  switch (has(x, 'o') ? x.o : undefined) {
    case 'p':
      return { op: 'put', key: k, value: jsonText(x, 'v', 'value') };
    case 'd':
      return { op: 'delete', key: k };
    case 'g':
      return { op: 'get', key: k };
    default:
      return fail('unknown txn op');
  }
}

const TARGETS: readonly string[] = ['version', 'value', 'revision', 'exists'];
const OPS: readonly string[] = ['==', '!=', '<', '>'];

function decodeCompare(x: unknown): Compare {
  if (!isObject(x)) fail('txn compare must be a map');
  const target = str(x, 'g', 'compare target');
  const op = str(x, 'o', 'compare op');
  if (!TARGETS.includes(target)) fail('unknown compare target');
  if (!OPS.includes(op)) fail('unknown compare op');
  return {
    key: key(x),
    target: target as CompareTarget,
    op: op as CompareOp,
    value: jsonText(x, 'cv', 'compare value'),
  };
}

function list<T>(w: Wire, field: string, each: (x: unknown) => T): T[] {
  const v = has(w, field) ? w[field] : undefined;
  if (!Array.isArray(v)) fail(`txn ${field} must be an array`);
  return v.map(each);
}

/** Short names of the auth actions on the wire. */
const AUTH_KINDS: Readonly<Record<AuthAction['kind'], string>> = {
  'user-add': 'ua',
  'user-delete': 'ud',
  'user-password': 'up',
  'user-grant': 'ug',
  'user-revoke': 'ur',
  'role-add': 'ra',
  'role-delete': 'rd',
  'role-grant': 'rg',
  'role-revoke': 'rr',
  enable: 'en',
  disable: 'di',
  login: 'li',
  logout: 'lo',
};
const AUTH_KIND_OF = new Map(Object.entries(AUTH_KINDS).map(([k, v]) => [v, k as AuthAction['kind']]));

/**
 * Auth commands are msgpack maps: `t: "a"`, `a` the action's short name, `by` the acting user, then
 * `n` name, `r` role, `s`/`h` salt and hash (bin), `p` prefix, `rd`/`wr` read/write, `sid` session hash,
 * `tm` time, `ex` expiry. As-user commands, on the hot path with auth on, are binary (see encodeAsUser).
 */
function encodeAuthCommand(cmd: AuthCommand): Uint8Array {
  const a = cmd.action;
  const w: Wire = { t: 'a', a: AUTH_KINDS[a.kind] };
  if (cmd.by !== undefined) w.by = cmd.by;
  switch (a.kind) {
    case 'user-add':
    case 'user-password':
      w.n = a.name;
      if (a.secret !== undefined) {
        w.s = a.secret.salt;
        w.h = a.secret.hash;
      }
      break;
    case 'user-delete':
    case 'role-add':
    case 'role-delete':
      w.n = a.name;
      break;
    case 'user-grant':
    case 'user-revoke':
      w.n = a.name;
      w.r = a.role;
      break;
    case 'role-grant':
      w.n = a.name;
      w.p = a.permission.prefix;
      w.rd = a.permission.read;
      w.wr = a.permission.write;
      break;
    case 'role-revoke':
      w.n = a.name;
      w.p = a.prefix;
      break;
    case 'login':
      w.n = a.name;
      w.sid = a.session;
      w.tm = a.time;
      w.ex = a.expires;
      break;
    case 'logout':
      w.sid = a.session;
      break;
    case 'enable':
    case 'disable':
      break;
  }
  return pack(w);
}

function bytes(w: Wire, field: string, what: string): Uint8Array {
  const v = has(w, field) ? w[field] : undefined;
  if (!(v instanceof Uint8Array)) fail(`${what} must be bytes`);
  return v;
}

function bool(w: Wire, field: string, what: string): boolean {
  const v = has(w, field) ? w[field] : undefined;
  if (typeof v !== 'boolean') fail(`${what} must be a boolean`);
  return v;
}

function decodeAuthAction(w: Wire): AuthAction {
  const kind = AUTH_KIND_OF.get(str(w, 'a', 'auth action'));
  const name = () => str(w, 'n', 'name');
  const secret = (): { secret?: PasswordSecret } =>
    has(w, 's') || has(w, 'h') ? { secret: { salt: bytes(w, 's', 'salt'), hash: bytes(w, 'h', 'hash') } } : {};
  switch (kind) {
    case 'user-add':
    case 'user-password':
      return { kind, name: name(), ...secret() };
    case 'user-delete':
    case 'role-add':
    case 'role-delete':
      return { kind, name: name() };
    case 'user-grant':
    case 'user-revoke':
      return { kind, name: name(), role: str(w, 'r', 'role') };
    case 'role-grant':
      return {
        kind,
        name: name(),
        permission: { prefix: str(w, 'p', 'prefix'), read: bool(w, 'rd', 'read'), write: bool(w, 'wr', 'write') },
      };
    case 'role-revoke':
      return { kind, name: name(), prefix: str(w, 'p', 'prefix') };
    case 'login':
      return {
        kind,
        name: name(),
        session: str(w, 'sid', 'session'),
        time: nonNegInt(w.tm, 'time'),
        expires: nonNegInt(w.ex, 'expiry'),
      };
    case 'logout':
      return { kind, session: str(w, 'sid', 'session') };
    case 'enable':
    case 'disable':
      return { kind };
    default:
      return fail('unknown auth action');
  }
}

function decodeAuthCommand(w: Wire): AuthCommand {
  const action = decodeAuthAction(w);
  return has(w, 'by') ? { op: 'auth', action, by: str(w, 'by', 'acting user') } : { op: 'auth', action };
}

/**
 * As-user, in the binary form: `u8 0xC1 | u8 3 | u8 0 | str user | <the key command's own bytes>` (the
 * leader wraps the bytes it would have proposed; a follower reads the user, then the command).
 */
function encodeAsUser(cmd: AsUserCommand): Uint8Array {
  const inner = encodeCommand(cmd.command);
  const userLen = Buffer.byteLength(cmd.user, 'utf8');
  const head = 3 + varintSize(userLen) + userLen;
  const buf = Buffer.allocUnsafe(head + inner.length);
  buf[0] = BINARY_MARKER;
  buf[1] = OP_AS_USER;
  buf[2] = 0;
  let off = writeVarint(buf, 3, userLen);
  off += buf.write(cmd.user, off, 'utf8');
  buf.set(inner, off);
  return buf;
}

function decodeAsUser(buf: Buffer): AsUserCommand {
  if (buf[2] !== 0) fail('unknown command flags');
  const r = new BinaryReader(buf);
  const user = r.str('user');
  if (user.length === 0) fail('user must not be empty');
  const inner = decodeCommand(r.rest());
  if (inner.op === 'auth' || inner.op === 'as-user') fail('an as-user command wraps a key command');
  return { op: 'as-user', user, command: inner };
}

/** Decodes and validates log-entry bytes; throws InvalidCommandError on anything malformed. */
export function decodeCommand(bytes: Uint8Array): LogCommand {
  if (bytes.length > 0 && bytes[0] === BINARY_MARKER) return decodeKeyCommand(bytes);
  let w: unknown;
  try {
    w = unpack(bytes);
  } catch {
    fail('entry is not valid msgpack');
  }
  if (!isObject(w)) fail('entry is not a command map');
  const requestId = decodeRequestId(w);
  const rid = requestId === undefined ? {} : { requestId };
  switch (has(w, 't') ? w.t : undefined) {
    case 'p':
      return { op: 'put', key: key(w), value: jsonText(w, 'v', 'value'), ...decodeConditions(w), ...rid };
    case 'd':
      return { op: 'delete', key: key(w), ...decodeConditions(w), ...rid };
    case 't':
      return {
        op: 'txn',
        compare: list(w, 'c', decodeCompare),
        success: list(w, 's', decodeOp),
        failure: list(w, 'f', decodeOp),
        ...rid,
      };
    case 'a':
      return decodeAuthCommand(w);
    default:
      return fail('unknown command type');
  }
}

/** Throws unless `value` is a JSON value (used by the parse helpers before a value enters a command). */
export function assertJson(value: unknown, what: string): asserts value is JsonValue {
  const e = jsonError(value);
  if (e !== null) throw new InvalidCommandError(`${what}: ${e}`);
}
