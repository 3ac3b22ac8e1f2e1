/**
 * The fetch a client uses: the global one, or, given TLS options (a CA to trust, a client certificate),
 * undici's fetch through a keep-alive agent that connects with them.
 */
import { fetch as undiciFetch } from 'undici';
import { hasClientTls, tlsAgent, type ClientTls } from '../net/tls-config.js';

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export function clientFetch(o: ClientTls): FetchLike {
  if (!hasClientTls(o)) return (url, init) => fetch(url, init);
  const dispatcher = tlsAgent(o);
  return (url, init) =>
    undiciFetch(url, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher }) as unknown as Promise<Response>;
}
