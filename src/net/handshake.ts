/**
 * The peer transport's connection handshake (protocol version 3), run once per TCP connection:
 *
 *  1. acceptor → dialer: challenge `C` (32 random bytes);
 *  2. dialer → acceptor: hello `from | to | N | HMAC(secret, "qkv-hello" | version | from | to | C | N)` with
 *     its own random `N`;
 *  3. acceptor → dialer: welcome `HMAC(secret, "qkv-welcome" | version | from | to | C | N)`.
 *
 * The acceptor admits the connection only after checking the hello's MAC, the dialer sends its first message
 * only after checking the welcome's: each side proves it holds the cluster secret, over nonces the other
 * chose for this connection, so a recorded handshake replayed on a new connection fails (its MAC covers
 * another challenge). The two MACs carry different labels, so one cannot stand for the other. After the
 * handshake, frames flow exactly as before: no per-message cost.
 *
 * Without keys (a node with no secret, see resolvePeerKeys) the MACs are zero bytes and not checked.
 */
import { randomBytes } from 'node:crypto';
import type { NodeId } from '../raft/types.js';
import { PROTOCOL_VERSION, HANDSHAKE_NONCE_BYTES } from './codec.js';
import { MAC_BYTES, type PeerKeys } from './peer-auth.js';

const HELLO_LABEL = Buffer.from('qkv-hello\0');
const WELCOME_LABEL = Buffer.from('qkv-welcome\0');
const ZERO_MAC = Buffer.alloc(MAC_BYTES);

export function handshakeNonce(): Buffer {
  return randomBytes(HANDSHAKE_NONCE_BYTES);
}

function transcript(label: Buffer, from: NodeId, to: NodeId, challenge: Uint8Array, nonce: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(label.length + 1 + 4 + 4 + challenge.length + nonce.length);
  let off = label.copy(b, 0);
  b[off++] = PROTOCOL_VERSION;
  off = b.writeUInt32LE(from, off);
  off = b.writeUInt32LE(to, off);
  b.set(challenge, off);
  b.set(nonce, off + challenge.length);
  return b;
}

/** The dialer's MAC, with the signing secret. */
export function helloMac(
  keys: PeerKeys | undefined,
  from: NodeId,
  to: NodeId,
  challenge: Uint8Array,
  nonce: Uint8Array,
): Buffer {
  return keys === undefined ? ZERO_MAC : keys.mac(transcript(HELLO_LABEL, from, to, challenge, nonce));
}

/** The acceptor's check of a hello: the index of the secret that made it, or -1. */
export function checkHello(
  keys: PeerKeys | undefined,
  from: NodeId,
  to: NodeId,
  challenge: Uint8Array,
  nonce: Uint8Array,
  mac: Uint8Array,
): number {
  return keys === undefined ? 0 : keys.match(transcript(HELLO_LABEL, from, to, challenge, nonce), mac);
}

/** The acceptor's MAC, with the secret that verified the hello. */
export function welcomeMac(
  keys: PeerKeys | undefined,
  keyIndex: number,
  from: NodeId,
  to: NodeId,
  challenge: Uint8Array,
  nonce: Uint8Array,
): Buffer {
  return keys === undefined ? ZERO_MAC : keys.mac(transcript(WELCOME_LABEL, from, to, challenge, nonce), keyIndex);
}

/** The dialer's check of the welcome. */
export function checkWelcome(
  keys: PeerKeys | undefined,
  from: NodeId,
  to: NodeId,
  challenge: Uint8Array,
  nonce: Uint8Array,
  mac: Uint8Array,
): boolean {
  return keys === undefined || keys.match(transcript(WELCOME_LABEL, from, to, challenge, nonce), mac) >= 0;
}
