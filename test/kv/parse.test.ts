import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCommand, encodeCommand, InvalidCommandError, type Command } from '../../src/kv/commands.js';
import { pack } from '../../src/util/msgpack.js';
import {
  isParseError,
  parseDeleteRequest,
  parsePutRequest,
  parseRequestId,
  parseTxnRequest,
  type ParseResult,
} from '../../src/kv/parse.js';
import { canonicalJson, jsonEqual, jsonError } from '../../src/kv/json.js';

function ok(r: ParseResult): Command {
  if (isParseError(r)) assert.fail(`unexpected error ${r.error}`);
  return r;
}

function err(r: ParseResult, re: RegExp, status = 400): void {
  assert.ok(isParseError(r), 'expected an error');
  assert.match(r.error, re);
  assert.equal(r.status, status);
}

test('parsePutRequest accepts value, conditions and request id', () => {
  assert.deepEqual(ok(parsePutRequest('k', { value: 'v' })), { op: 'put', key: 'k', value: 'v' });
  assert.deepEqual(ok(parsePutRequest('k', { value: null, if_version: 0, if_value: null, request_id: 'cli:ent:42' })), {
    op: 'put',
    key: 'k',
    value: null,
    ifVersion: 0,
    ifValue: null,
    hasIfValue: true,
    requestId: { client: 'cli:ent', seq: 42 },
  });
});

test('parsePutRequest rejects bad bodies with clear errors', () => {
  err(parsePutRequest('k', undefined), /PUT request does not specify a value/);
  err(parsePutRequest('k', {}), /PUT request does not specify a value/);
  err(parsePutRequest('k', [1]), /must be a JSON object/);
  err(parsePutRequest('k', 'str'), /must be a JSON object/);
  err(parsePutRequest('', { value: 1 }), /Key is empty/);
  err(parsePutRequest('x'.repeat(2000), { value: 1 }), /Key is too long/);
  err(parsePutRequest('k', { value: 1, if_version: -1 }), /if_version/);
  err(parsePutRequest('k', { value: 1, if_version: 1.5 }), /if_version/);
  err(parsePutRequest('k', { value: 1, if_version: '1' }), /if_version/);
  err(parsePutRequest('k', { value: 1, request_id: 'nocolon' }), /request_id/);
  err(parsePutRequest('k', { value: 1, request_id: 'c:-1' }), /request_id/);
  err(parsePutRequest('k', { value: 1, request_id: 7 }), /request_id/);
  err(parsePutRequest('k', { value: NaN }), /non-finite/);
  err(
    parsePutRequest('k', { value: 'x'.repeat(100) }, { maxKeyBytes: 10, maxValueBytes: 50, maxTxnOps: 5 }),
    /Value is too large/,
    413,
  );
});

test('parseDeleteRequest: body optional', () => {
  assert.deepEqual(ok(parseDeleteRequest('k', undefined)), { op: 'delete', key: 'k' });
  assert.deepEqual(ok(parseDeleteRequest('k', { if_value: [1], request_id: 'a:1' })), {
    op: 'delete',
    key: 'k',
    ifValue: [1],
    hasIfValue: true,
    requestId: { client: 'a', seq: 1 },
  });
  err(parseDeleteRequest('k', 5), /must be a JSON object/);
});

test('parseRequestId', () => {
  assert.deepEqual(parseRequestId('a:0'), { client: 'a', seq: 0 });
  for (const bad of [':1', 'a:', 'a:x', 'a:1.5', '', 'a:1e3']) assert.ok(isParseError(parseRequestId(bad)), bad);
});

test('parseTxnRequest accepts the documented shape', () => {
  const cmd = ok(
    parseTxnRequest({
      compare: [
        { key: 'a', target: 'version', op: '>', value: 2 },
        { key: 'b', target: 'value', value: { x: 1 } },
        { key: 'c', target: 'exists', op: '!=', value: true },
      ],
      success: [
        { op: 'put', key: 'a', value: [1] },
        { op: 'get', key: 'b' },
      ],
      failure: [{ op: 'delete', key: 'a' }],
      request_id: 'c:9',
    }),
  );
  assert.deepEqual(cmd, {
    op: 'txn',
    compare: [
      { key: 'a', target: 'version', op: '>', value: 2 },
      { key: 'b', target: 'value', op: '==', value: { x: 1 } },
      { key: 'c', target: 'exists', op: '!=', value: true },
    ],
    success: [
      { op: 'put', key: 'a', value: [1] },
      { op: 'get', key: 'b' },
    ],
    failure: [{ op: 'delete', key: 'a' }],
    requestId: { client: 'c', seq: 9 },
  });
  assert.deepEqual(ok(parseTxnRequest({})), { op: 'txn', compare: [], success: [], failure: [] });
});

test('parseTxnRequest rejects malformed transactions', () => {
  err(parseTxnRequest(null), /missing/);
  err(parseTxnRequest([]), /must be a JSON object/);
  err(parseTxnRequest({ compare: {} }), /compare must be an array/);
  err(parseTxnRequest({ extra: 1 }), /Unknown transaction field/);
  err(parseTxnRequest({ compare: [{ key: 'a', target: 'size', value: 1 }] }), /target must be one of/);
  err(parseTxnRequest({ compare: [{ key: 'a', target: 'version', op: '>=', value: 1 }] }), /op must be one of/);
  err(parseTxnRequest({ compare: [{ key: 'a', target: 'version', value: 'x' }] }), /non-negative integer/);
  err(parseTxnRequest({ compare: [{ key: 'a', target: 'exists', value: 1 }] }), /boolean/);
  err(parseTxnRequest({ compare: [{ key: 'a', target: 'exists', op: '<', value: true }] }), /== or !=/);
  err(parseTxnRequest({ compare: [{ key: 'a', target: 'value', op: '<', value: [1] }] }), /number or a string/);
  err(parseTxnRequest({ compare: [{ key: 'a', target: 'value' }] }), /value is missing/);
  err(parseTxnRequest({ compare: [{ target: 'value', value: 1 }] }), /key must be a string/);
  err(parseTxnRequest({ success: [{ op: 'put', key: 'a' }] }), /success\[0\]\.value is missing/);
  err(parseTxnRequest({ failure: [{ op: 'cas', key: 'a' }] }), /failure\[0\]\.op/);
  err(parseTxnRequest({ success: [7] }), /success\[0\] must be a JSON object/);
  err(
    parseTxnRequest(
      { success: [1, 2, 3].map((i) => ({ op: 'get', key: `k${i}` })) },
      { maxKeyBytes: 10, maxValueBytes: 10, maxTxnOps: 2 },
    ),
    /more than 2/,
  );
});

test('encode/decode round-trips every command shape', () => {
  const cmds: Command[] = [
    { op: 'put', key: 'k', value: { b: 1, a: [null, 'x', 1.25] } },
    {
      op: 'put',
      key: 'k',
      value: 1,
      ifVersion: 3,
      ifValue: null,
      hasIfValue: true,
      requestId: { client: 'c', seq: 0 },
    },
    { op: 'delete', key: 'k' },
    { op: 'delete', key: 'k', ifValue: 'x', hasIfValue: true },
    {
      op: 'txn',
      compare: [{ key: 'a', target: 'revision', op: '<', value: 5 }],
      success: [{ op: 'put', key: 'a', value: 1 }],
      failure: [
        { op: 'get', key: 'a' },
        { op: 'delete', key: 'a' },
      ],
      requestId: { client: 'x', seq: 2 ** 40 },
    },
  ];
  for (const c of cmds) assert.deepEqual(decodeCommand(encodeCommand(c)), c);
  // put and delete are binary (marker 0xC1); logs written before that hold msgpack maps, still read.
  assert.equal(encodeCommand({ op: 'put', key: 'k', value: 1 })[0], 0xc1);
  assert.deepEqual(decodeCommand(pack({ t: 'p', k: 'k', v: '[1,"x"]', ic: 2, rc: 'c', rs: 5 })), {
    op: 'put',
    key: 'k',
    value: [1, 'x'],
    ifVersion: 2,
    requestId: { client: 'c', seq: 5 },
  });
  assert.deepEqual(decodeCommand(pack({ t: 'd', k: 'k', iv: 'null' })), {
    op: 'delete',
    key: 'k',
    ifValue: null,
    hasIfValue: true,
  });
  // Truncated or padded binary commands are invalid, never misread.
  const bin = encodeCommand({ op: 'put', key: 'key', value: 'v', requestId: { client: 'c', seq: 300 } });
  for (let n = 0; n < bin.length; n++) assert.throws(() => decodeCommand(bin.subarray(0, n)), InvalidCommandError);
  assert.throws(() => decodeCommand(Buffer.concat([bin, Buffer.from([0])])), InvalidCommandError);
  const withProto = JSON.parse('{"__proto__":{"a":1}}') as { [k: string]: never };
  const back = decodeCommand(encodeCommand({ op: 'put', key: 'k', value: withProto }));
  assert.equal(back.op === 'put' && JSON.stringify(back.value), '{"__proto__":{"a":1}}');
});

test('json helpers: canonical form, deep equality, validation', () => {
  assert.equal(canonicalJson({ b: [1, { d: 1, c: 2 }], a: null }), '{"a":null,"b":[1,{"c":2,"d":1}]}');
  assert.ok(jsonEqual({ a: 1, b: 2 }, { b: 2, a: 1 }));
  assert.ok(!jsonEqual({ a: 1 }, { a: '1' }));
  assert.ok(!jsonEqual([1, 2], { 0: 1, 1: 2 }));
  assert.ok(!jsonEqual(null, 0));
  assert.equal(jsonError({ a: [1, 'x', null, true] }), null);
  assert.match(jsonError({ a: undefined }) ?? '', /undefined/);
  assert.match(jsonError(new Date()) ?? '', /plain/);
  assert.match(jsonError(Infinity) ?? '', /non-finite/);
});
