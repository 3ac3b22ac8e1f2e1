import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkKey, checkPutBody, createHttpServer, methodNotAllowed } from '../../src/server/http-common.js';

const limits = { maxKeyBytes: 8, maxValueBytes: 16 };

async function app() {
  const a = createHttpServer({ limits });
  a.put<{ Params: { '*': string } }>('/kvs/*', async (req) => {
    const key = checkKey(req.params['*'], limits);
    const body = checkPutBody(req.body, limits);
    return { key, value: body.value };
  });
  methodNotAllowed(a, '/kvs/*', ['PUT']);
  await a.ready();
  return a;
}

test('contract errors: malformed JSON, missing value, long key, large value, unknown route, wrong method', async () => {
  const a = await app();
  const put = (url: string, payload: string) =>
    a.inject({ method: 'PUT', url, payload, headers: { 'content-type': 'application/json' } });
  let r = await put('/kvs/a%2Fb', '{"value":"x"}');
  assert.equal(r.statusCode, 200);
  assert.deepEqual(r.json(), { key: 'a/b', value: 'x' });
  r = await put('/kvs/k', '{"value":');
  assert.equal(r.statusCode, 400);
  assert.match(r.json().error, /Malformed JSON/);
  r = await put('/kvs/k', '{}');
  assert.deepEqual([r.statusCode, r.json()], [400, { error: 'PUT request does not specify a value' }]);
  r = await put('/kvs/k', '[1]');
  assert.equal(r.statusCode, 400);
  r = await put('/kvs/123456789', '{"value":1}');
  assert.deepEqual([r.statusCode, r.json()], [400, { error: 'Key is too long' }]);
  r = await put('/kvs/k', JSON.stringify({ value: 'x'.repeat(40) }));
  assert.deepEqual([r.statusCode, r.json()], [413, { error: 'Value is too large' }]);
  r = await put('/kvs/k', JSON.stringify({ value: 'x'.repeat(100_000) }));
  assert.deepEqual([r.statusCode, r.json()], [413, { error: 'Value is too large' }]);
  r = await a.inject({ method: 'GET', url: '/nope' });
  assert.deepEqual([r.statusCode, r.json()], [404, { error: 'Not found' }]);
  r = await a.inject({ method: 'POST', url: '/kvs/k' });
  assert.equal(r.statusCode, 405);
  assert.match(r.json().error, /not allowed/);
  await a.close();
});
