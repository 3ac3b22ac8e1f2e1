import type https from 'node:https';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyError } from 'fastify';
import { jsonFits } from '../kv/json.js';

/** Size limits shared by every mode (see ../shared/api.md). */
export interface Limits {
  /** Maximum key length in bytes (UTF-8). */
  readonly maxKeyBytes: number;
  /** Maximum JSON-encoded value size in bytes. */
  readonly maxValueBytes: number;
}

export const DEFAULT_LIMITS: Limits = { maxKeyBytes: 1024, maxValueBytes: 1024 * 1024 };

/**
 * Deepest nesting of arrays and objects a JSON body may have. Deeper bodies are refused with a 400 before
 * they are parsed: code that walks a value recursively (JSON.stringify, the response serialiser) would
 * overflow the stack on them.
 */
export const MAX_JSON_DEPTH = 1000;

/** Whether a JSON text nests arrays and objects deeper than `max` (a linear scan that skips strings). */
export function jsonNestingExceeds(text: string, max = MAX_JSON_DEPTH): boolean {
  if (text.length <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** The 400 for a body nested deeper than MAX_JSON_DEPTH. */
export function tooDeep(): HttpError {
  return new HttpError(400, `Malformed JSON body: nested more than ${MAX_JSON_DEPTH} levels deep`);
}

export interface HttpOptions {
  readonly limits?: Limits;
  /** Pino logger options, or false for none (tests). */
  readonly logger?: boolean | { level: string };
  /** Largest request body in bytes (default: the value limit plus 64 KiB). */
  readonly bodyLimit?: number;
  /** The 413 answer's message for a body over the limit, by request URL (default "Value is too large"). */
  readonly tooLarge?: (url: string) => string;
  /** Serve HTTPS with these options (see src/net/tls-config.ts `httpsServerOptions`); default plain HTTP. */
  readonly https?: https.ServerOptions;
}

/** An HTTP error carrying the contract's JSON body. Throw it from a handler. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** 503 with Retry-After, as the contract asks of a node that cannot serve now. */
export function unavailable(message: string, extra: Record<string, unknown> = {}, retryAfterSeconds = 1): HttpError {
  return new HttpError(503, message, extra, { 'retry-after': String(retryAfterSeconds) });
}

export function sendError(reply: FastifyReply, err: HttpError): FastifyReply {
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  return reply.code(err.statusCode).send({ error: err.message, ...err.extra });
}

/**
 * A Fastify instance with the contract's error conventions: every error is `{"error": "..."}` JSON,
 * malformed JSON is a 400, an oversized body a 413 "Value is too large", unknown routes a 404 "Not found".
 * Keys may be long (up to the key limit), so the router accepts long path parameters.
 */
export function createHttpServer(opts: HttpOptions = {}): FastifyInstance {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const app = Fastify({
    logger: opts.logger ?? false,
    // The body holds the value plus a little JSON around it; the value itself is checked exactly in handlers.
    bodyLimit: opts.bodyLimit ?? limits.maxValueBytes + 64 * 1024,
    routerOptions: { maxParamLength: Math.max(256, limits.maxKeyBytes * 4) },
    keepAliveTimeout: 60_000,
    // The same instance type either way: routes and hooks do not depend on the transport.
    ...(opts.https === undefined ? {} : { https: opts.https }),
  }) as unknown as FastifyInstance;
  // An empty body is no body, whatever its content-type says (many clients send the header on every
  // request): routes whose body is optional then work, and the others give their "missing" error.
  const json = app.getDefaultJsonParser('error', 'ignore');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    if (jsonNestingExceeds(text)) {
      done(tooDeep(), undefined);
      return;
    }
    json(req, text, done);
  });
  const tooLarge = opts.tooLarge ?? (() => 'Value is too large');
  app.setErrorHandler((err: FastifyError | HttpError, req, reply) => {
    if (err instanceof HttpError) return sendError(reply, err);
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send({ error: tooLarge(req.url) });
    const status = err.statusCode ?? 500;
    if (status >= 500) reply.log.error(err);
    const message =
      err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
        ? `Malformed JSON body: ${err.message}`
        : err.message;
    return reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'Not found' }));
  return app;
}

/** Registers 405 answers for every method a path does not serve. Call after the real routes. */
export function methodNotAllowed(app: FastifyInstance, url: string, allowed: readonly string[]): void {
  const all = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH'] as const;
  const others = all.filter((m) => !allowed.includes(m));
  if (others.length === 0) return;
  app.route({
    method: others,
    url,
    handler: (req, reply) => {
      reply.header('allow', allowed.join(', '));
      return reply.code(405).send({ error: `Method ${req.method} not allowed` });
    },
  });
}

/** Validates a key from a URL path segment, throwing the contract's 400 errors. */
export function checkKey(key: string | undefined, limits: Limits): string {
  if (key === undefined || key.length === 0) throw new HttpError(400, 'Key is empty');
  // A query parameter given twice (`?key=a&key=b`) arrives as an array.
  if (typeof key !== 'string') throw new HttpError(400, 'Key must be given once, as a string');
  if (Buffer.byteLength(key, 'utf8') > limits.maxKeyBytes) throw new HttpError(400, 'Key is too long');
  return key;
}

/**
 * Validates a PUT body `{"value": V, ...}` and returns it as an object, throwing the contract's errors:
 * 400 for a body that is not an object or lacks a value, 413 for a value over the limit.
 */
export function checkPutBody(body: unknown, limits: Limits): Record<string, unknown> & { value: unknown } {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    if (body === undefined || body === null) throw new HttpError(400, 'PUT request does not specify a value');
    throw new HttpError(400, 'Request body must be a JSON object');
  }
  const obj = body as Record<string, unknown>;
  if (!('value' in obj) || obj.value === undefined) throw new HttpError(400, 'PUT request does not specify a value');
  if (!jsonFits(obj.value, limits.maxValueBytes)) {
    throw new HttpError(413, 'Value is too large');
  }
  return obj as Record<string, unknown> & { value: unknown };
}
