import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c } from '../../src/storage/crc32c.js';

test('crc32c matches the standard check value and the RFC 3720 vectors', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
});

test('crc32c continues across split buffers and sub-ranges', () => {
  const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7919) & 0xff);
  const whole = crc32c(data);
  for (const cut of [0, 1, 7, 8, 9, 500, 999, 1000]) {
    assert.equal(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))), whole, `cut at ${cut}`);
    assert.equal(crc32c(data, crc32c(data, 0, 0, cut), cut), whole, `range cut at ${cut}`);
  }
  const flipped = data.slice();
  flipped[123] ^= 0x10;
  assert.notEqual(crc32c(flipped), whole);
});
