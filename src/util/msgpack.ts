import { Decoder, Encoder } from '@msgpack/msgpack';

// One encoder and decoder per process: they keep their buffers between calls.
const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();

/** Encodes a value as MessagePack (binary fields as `bin`, decoded back as Uint8Array). */
export function pack(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Decodes MessagePack bytes; throws on malformed input. */
export function unpack(bytes: Uint8Array): unknown {
  return decoder.decode(bytes);
}
