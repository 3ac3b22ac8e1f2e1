/**
 * What a node replicates: the state machine the host applies committed entries to, and the HTTP routes
 * that read it and propose to it. The key-value store is one app (kv-app.ts), the chat service another
 * (src/chat/app.ts); `startRaftNode` wires either to the same host, storage, transport and admin routes.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RaftStorage } from '../storage/types.js';
import type { DispatchContext } from './dispatch.js';
import type { HostStateMachine, RaftHost } from './driver.js';
import type { ServerConfig } from './config.js';
import type { Limits } from './http-common.js';

export type AppName = 'kv' | 'chat';
export const APPS: readonly AppName[] = ['kv', 'chat'];

/** An app's state machine, opened against the node's storage (its snapshot, its data directory). */
export interface OpenedApp<R, C> {
  readonly sm: HostStateMachine<R, C>;
  /** Index of the last entry the state machine already holds (at least the storage's snapshot index). */
  readonly applied: number;
  /** Registers the client routes once the host exists. */
  routes(app: FastifyInstance, ctx: AppRouteContext<R, C>): void;
  /** Extra fields for `/status`. */
  status(): Record<string, unknown>;
  /**
   * The dashboard's node controls: with client auth on, throws a 401/403 HttpError unless the request is
   * root's and resolves true; resolves false with auth off.
   */
  readonly checkAdmin?: (req: FastifyRequest) => Promise<boolean>;
  close(): void;
}

export interface AppRouteContext<R, C> extends DispatchContext {
  readonly host: RaftHost<R, C>;
  readonly limits: Limits;
  /** Forwarded requests must carry a valid peer credential (the node has a cluster secret). */
  readonly peerAuthenticated?: boolean;
}

export interface RaftApp<R, C> {
  readonly name: AppName;
  /** Largest request body (default: the value limit plus 64 KiB). */
  readonly bodyLimit?: (cfg: ServerConfig) => number;
  /** The 413 message for a body over the limit, by URL. */
  readonly tooLarge?: (url: string) => string;
  open(cfg: ServerConfig, storage: RaftStorage): OpenedApp<R, C>;
}

/**
 * The host's starting applied index for a state machine that holds `smApplied`: never beyond the local log
 * (the core requires it; a leader may have applied entries its own disk had not yet written when it
 * crashed — the state machine skips them when they come back), never below the snapshot.
 */
export function startingApplied(smApplied: number, storage: RaftStorage): number {
  const snap = storage.snapshot().metadata.index;
  return Math.max(snap, Math.min(smApplied, storage.lastIndex()));
}
