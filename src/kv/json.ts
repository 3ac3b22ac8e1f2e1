/** JSON values as stored by the key-value state machine, and deterministic helpers on them. */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * A canonical JSON text: object keys sorted (by UTF-16 code units), no whitespace. Two JSON values are
 * deep-equal exactly when their canonical texts are equal. Own keys named `__proto__` are handled as
 * ordinary keys (nothing is assigned to an object here).
 */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  const keys = Object.keys(value).sort();
  const parts: string[] = [];
  for (const k of keys) parts.push(JSON.stringify(k) + ':' + canonicalJson(value[k] as JsonValue));
  return '{' + parts.join(',') + '}';
}

/** Deep equality of two JSON values (object key order does not matter). */
export function jsonEqual(a: JsonValue, b: JsonValue): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * Checks that an untrusted value is a JSON value (what JSON.parse can produce): finite numbers, plain
 * arrays and objects, no undefined, functions, bigints or cycles. Returns an error string or null.
 */
export function jsonError(value: unknown, depth = 0): string | null {
  if (depth > 512) return 'value is nested too deeply';
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return null;
  if (typeof value === 'number') return Number.isFinite(value) ? null : 'value contains a non-finite number';
  if (Array.isArray(value)) {
    for (const v of value) {
      const e = jsonError(v, depth + 1);
      if (e !== null) return e;
    }
    return null;
  }
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) return 'value is not a plain JSON object';
    for (const k of Object.keys(value)) {
      const e = jsonError((value as Record<string, unknown>)[k], depth + 1);
      if (e !== null) return e;
    }
    return null;
  }
  return `value of type ${typeof value} is not JSON`;
}

/**
 * Whether `JSON.stringify(value)` takes at most `maxBytes` bytes of UTF-8. Short strings and scalars are
 * answered without serialising them: in JSON text a UTF-16 code unit takes at most 6 bytes (`\uXXXX`).
 */
export function jsonFits(value: unknown, maxBytes: number): boolean {
  if (typeof value === 'string') {
    if (value.length * 6 + 2 <= maxBytes) return true;
  } else if (value === null || typeof value === 'boolean' || typeof value === 'number') {
    if (maxBytes >= 32) return true;
  }
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8') <= maxBytes;
}
