/**
 * Validation of untrusted HTTP JSON into state-machine commands. Every helper returns either a Command or
 * `{error, status}` with a clear message for a 400 (or 413 for an oversized value), never throws.
 *
 * Accepted shapes (field names as in the HTTP contract):
 *
 *   PUT /kvs/<key>     {"value": V, "if_version"?: n, "if_value"?: V, "request_id"?: "<client-id>:<seq>"}
 *   DELETE /kvs/<key>  no body, or {"if_version"?: n, "if_value"?: V, "request_id"?: "<client-id>:<seq>"}
 *   POST /txn          {"compare"?: [C...], "success"?: [O...], "failure"?: [O...], "request_id"?: "..."}
 *     C = {"key": K, "target": "version"|"value"|"revision"|"exists", "op"?: "=="|"!="|"<"|">", "value": X}
 *         `op` defaults to "==". version/revision: X is a non-negative integer (a missing key has 0);
 *         exists: X is a boolean and op is == or !=; value: X is any JSON value, and < / > need a number
 *         or a string.
 *     O = {"op": "put", "key": K, "value": V} | {"op": "delete", "key": K} | {"op": "get", "key": K}
 *
 * `if_version: 0` means the key must not exist. `request_id` is split at its last colon; the sequence
 * number is a non-negative integer.
 */
import type { Command, Compare, CompareOp, CompareTarget, RequestId, TxnOp } from './commands.js';
import { jsonError, jsonFits, type JsonValue } from './json.js';

export interface ParseError {
  readonly error: string;
  readonly status: 400 | 413;
}

export interface ParseLimits {
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  /** Maximum number of compares plus ops in one transaction. */
  readonly maxTxnOps: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = { maxKeyBytes: 1024, maxValueBytes: 1024 * 1024, maxTxnOps: 1024 };

export type ParseResult = Command | ParseError;

export function isParseError(r: ParseResult | RequestId): r is ParseError {
  return 'error' in r;
}

class Bad extends Error {
  constructor(
    message: string,
    readonly status: 400 | 413 = 400,
  ) {
    super(message);
  }
}

function guard(fn: () => Command): ParseResult {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Bad) return { error: e.message, status: e.status };
    throw e;
  }
}

type Obj = Record<string, unknown>;

function own(o: Obj, field: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, field) ? o[field] : undefined;
}

function asObject(x: unknown, what: string): Obj {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new Bad(`${what} must be a JSON object`);
  return x as Obj;
}

function checkKey(k: unknown, limits: ParseLimits, what = 'key'): string {
  if (typeof k !== 'string') throw new Bad(`${what} must be a string`);
  if (k.length === 0) throw new Bad('Key is empty');
  if (Buffer.byteLength(k, 'utf8') > limits.maxKeyBytes) throw new Bad('Key is too long');
  return k;
}

function checkValue(v: unknown, limits: ParseLimits, what: string): JsonValue {
  if (v === undefined) throw new Bad(`${what} is missing`);
  const e = jsonError(v);
  if (e !== null) throw new Bad(`${what}: ${e}`);
  if (!jsonFits(v, limits.maxValueBytes)) throw new Bad('Value is too large', 413);
  return v as JsonValue;
}

function nonNegInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new Bad(`${what} must be a non-negative integer`);
  return v;
}

/** Parses `"<client-id>:<seq>"`. */
export function parseRequestId(s: unknown): RequestId | ParseError {
  if (typeof s !== 'string') return { error: 'request_id must be a string "<client-id>:<seq>"', status: 400 };
  const i = s.lastIndexOf(':');
  const client = i < 0 ? '' : s.slice(0, i);
  const seqText = i < 0 ? '' : s.slice(i + 1);
  if (client.length === 0 || !/^[0-9]{1,15}$/.test(seqText)) {
    return { error: 'request_id must look like "<client-id>:<seq>" with a non-negative integer seq', status: 400 };
  }
  return { client, seq: Number(seqText) };
}

function requestIdOf(body: Obj): { requestId?: RequestId } {
  const raw = own(body, 'request_id');
  if (raw === undefined || raw === null) return {};
  const r = parseRequestId(raw);
  if (isParseError(r)) throw new Bad(r.error);
  return { requestId: r };
}

function conditionsOf(
  body: Obj,
  limits: ParseLimits,
): { ifVersion?: number; ifValue?: JsonValue; hasIfValue?: boolean } {
  const c: { ifVersion?: number; ifValue?: JsonValue; hasIfValue?: boolean } = {};
  const iv = own(body, 'if_version');
  if (iv !== undefined && iv !== null) c.ifVersion = nonNegInt(iv, 'if_version');
  if (Object.prototype.hasOwnProperty.call(body, 'if_value') && body.if_value !== undefined) {
    c.ifValue = checkValue(body.if_value, limits, 'if_value');
    c.hasIfValue = true;
  }
  return c;
}

/** A PUT of `key` with the request body (already JSON-parsed). */
export function parsePutRequest(key: string, body: unknown, limits: ParseLimits = DEFAULT_PARSE_LIMITS): ParseResult {
  return guard(() => {
    if (body === undefined || body === null) throw new Bad('PUT request does not specify a value');
    const b = asObject(body, 'Request body');
    if (own(b, 'value') === undefined) throw new Bad('PUT request does not specify a value');
    return {
      op: 'put',
      key: checkKey(key, limits),
      value: checkValue(b.value, limits, 'value'),
      ...conditionsOf(b, limits),
      ...requestIdOf(b),
    };
  });
}

/** A DELETE of `key`; the body is optional. */
export function parseDeleteRequest(
  key: string,
  body: unknown,
  limits: ParseLimits = DEFAULT_PARSE_LIMITS,
): ParseResult {
  return guard(() => {
    const k = checkKey(key, limits);
    if (body === undefined || body === null || body === '') return { op: 'delete', key: k };
    const b = asObject(body, 'Request body');
    return { op: 'delete', key: k, ...conditionsOf(b, limits), ...requestIdOf(b) };
  });
}

const TARGETS: readonly string[] = ['version', 'value', 'revision', 'exists'];
const OPS: readonly string[] = ['==', '!=', '<', '>'];

function parseCompare(x: unknown, i: number, limits: ParseLimits): Compare {
  const c = asObject(x, `compare[${i}]`);
  const key = checkKey(own(c, 'key'), limits, `compare[${i}].key`);
  const target = own(c, 'target');
  if (typeof target !== 'string' || !TARGETS.includes(target)) {
    throw new Bad(`compare[${i}].target must be one of ${TARGETS.join(', ')}`);
  }
  const opRaw = own(c, 'op') ?? '==';
  if (typeof opRaw !== 'string' || !OPS.includes(opRaw))
    throw new Bad(`compare[${i}].op must be one of ${OPS.join(' ')}`);
  const op = opRaw as CompareOp;
  const value = checkValue(own(c, 'value'), limits, `compare[${i}].value`);
  if (target === 'version' || target === 'revision') nonNegInt(value, `compare[${i}].value`);
  if (target === 'exists') {
    if (typeof value !== 'boolean') throw new Bad(`compare[${i}].value must be a boolean for target exists`);
    if (op !== '==' && op !== '!=') throw new Bad(`compare[${i}].op must be == or != for target exists`);
  }
  if (target === 'value' && (op === '<' || op === '>') && typeof value !== 'number' && typeof value !== 'string') {
    throw new Bad(`compare[${i}].value must be a number or a string for ${op}`);
  }
  return { key, target: target as CompareTarget, op, value };
}

function parseOp(x: unknown, where: string, limits: ParseLimits): TxnOp {
  const o = asObject(x, where);
  const key = checkKey(own(o, 'key'), limits, `${where}.key`);
  switch (own(o, 'op')) {
    case 'put':
      return { op: 'put', key, value: checkValue(own(o, 'value'), limits, `${where}.value`) };
    case 'delete':
      return { op: 'delete', key };
    case 'get':
      return { op: 'get', key };
    default:
      throw new Bad(`${where}.op must be one of put, delete, get`);
  }
}

function arrayOf(b: Obj, field: string): unknown[] {
  const v = own(b, field);
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Bad(`${field} must be an array`);
  return v;
}

/** A `POST /txn` body (see the module comment for its shape). */
export function parseTxnRequest(body: unknown, limits: ParseLimits = DEFAULT_PARSE_LIMITS): ParseResult {
  return guard(() => {
    if (body === undefined || body === null) throw new Bad('Transaction body is missing');
    const b = asObject(body, 'Transaction body');
    for (const field of Object.keys(b)) {
      if (!['compare', 'success', 'failure', 'request_id'].includes(field)) {
        throw new Bad(`Unknown transaction field ${JSON.stringify(field)}`);
      }
    }
    const compare = arrayOf(b, 'compare');
    const success = arrayOf(b, 'success');
    const failure = arrayOf(b, 'failure');
    if (compare.length + success.length + failure.length > limits.maxTxnOps) {
      throw new Bad(`Transaction has more than ${limits.maxTxnOps} compares and ops`);
    }
    return {
      op: 'txn',
      compare: compare.map((c, i) => parseCompare(c, i, limits)),
      success: success.map((o, i) => parseOp(o, `success[${i}]`, limits)),
      failure: failure.map((o, i) => parseOp(o, `failure[${i}]`, limits)),
      ...requestIdOf(b),
    };
  });
}
