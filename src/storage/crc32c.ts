/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven with slicing-by-8.
 *
 * `crc32c(data)` gives the standard checksum ("123456789" -> 0xE3069283). Passing the result of a previous
 * call as `seed` continues the computation, so `crc32c(b, crc32c(a))` equals the checksum of `a ++ b`;
 * the write-ahead log uses this both to cover non-contiguous byte ranges and to chain records.
 */

const POLY = 0x82f63b78;

/** TABLES[k][b]: the CRC contribution of byte b followed by k zero bytes. */
const TABLES: Int32Array[] = (() => {
  const t: Int32Array[] = [];
  for (let k = 0; k < 8; k++) t.push(new Int32Array(256));
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let i = 0; i < 8; i++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[0][b] = c;
  }
  for (let b = 0; b < 256; b++) {
    let c = t[0][b];
    for (let k = 1; k < 8; k++) {
      c = t[0][c & 0xff] ^ (c >>> 8);
      t[k][b] = c;
    }
  }
  return t;
})();

const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES;

/** CRC-32C of `data[start, end)`, continuing from `seed` (the CRC of the preceding bytes; 0 to start). */
export function crc32c(data: Uint8Array, seed = 0, start = 0, end = data.length): number {
  let crc = ~seed;
  let i = start;
  const fast = end - ((end - i) & 7);
  while (i < fast) {
    const lo = crc ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    crc =
      T7[lo & 0xff] ^
      T6[(lo >>> 8) & 0xff] ^
      T5[(lo >>> 16) & 0xff] ^
      T4[lo >>> 24] ^
      T3[data[i + 4]] ^
      T2[data[i + 5]] ^
      T1[data[i + 6]] ^
      T0[data[i + 7]];
    i += 8;
  }
  while (i < end) crc = T0[(crc ^ data[i++]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}
