export { Client, normalizeEndpoint, encodeKey } from './client.js';
export { KvError, NotFoundError, PreconditionFailedError, UnavailableError } from './errors.js';
export type * from './types.js';
