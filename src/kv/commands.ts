/**
 * Commands of the replicated key-value state machine and their log-entry encoding.
 *
 * An entry's bytes are a msgpack map with short field names. Values travel as JSON text inside the
 * msgpack (field `v`, `iv`, `cv`): a JSON value then round-trips exactly (key order, `__proto__` keys,
 * integers vs floats) and every replica parses the same text into the same value.
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

export type Command = PutCommand | DeleteCommand | TxnCommand;

type Wire = Record<string, unknown>;

function encodeRequestId(w: Wire, id: RequestId | undefined): void {
  if (id !== undefined) {
    w.rc = id.client;
    w.rs = id.seq;
  }
}

function encodeConditions(w: Wire, c: WriteConditions): void {
  if (c.ifVersion !== undefined) w.ic = c.ifVersion;
  if (c.hasIfValue === true || c.ifValue !== undefined) w.iv = JSON.stringify(c.ifValue ?? null);
}

function encodeOp(op: TxnOp): Wire {
  if (op.op === 'put') return { o: 'p', k: op.key, v: JSON.stringify(op.value) };
  return { o: op.op === 'delete' ? 'd' : 'g', k: op.key };
}

/** Encodes a command as the bytes of a log entry. */
export function encodeCommand(cmd: Command): Uint8Array {
  const w: Wire = {};
  switch (cmd.op) {
    case 'put':
      w.t = 'p';
      w.k = cmd.key;
      w.v = JSON.stringify(cmd.value);
      encodeConditions(w, cmd);
      break;
    case 'delete':
      w.t = 'd';
      w.k = cmd.key;
      encodeConditions(w, cmd);
      break;
    case 'txn':
      w.t = 't';
      w.c = cmd.compare.map((c) => ({ k: c.key, g: c.target, o: c.op, cv: JSON.stringify(c.value) }));
      w.s = cmd.success.map(encodeOp);
      w.f = cmd.failure.map(encodeOp);
      break;
  }
  encodeRequestId(w, cmd.requestId);
  return pack(w);
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
  const text = str(w, field, what);
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return fail(`${what} is not valid JSON`);
  }
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

/** Decodes and validates log-entry bytes; throws InvalidCommandError on anything malformed. */
export function decodeCommand(bytes: Uint8Array): Command {
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
    default:
      return fail('unknown command type');
  }
}

/** Throws unless `value` is a JSON value (used by the parse helpers before a value enters a command). */
export function assertJson(value: unknown, what: string): asserts value is JsonValue {
  const e = jsonError(value);
  if (e !== null) throw new InvalidCommandError(`${what}: ${e}`);
}
