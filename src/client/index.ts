export { Client, normalizeEndpoint, encodeKey } from './client.js';
export { KvError, NotFoundError, PreconditionFailedError, UnavailableError } from './errors.js';
export type * from './types.js';
export { KvWatch, WatchCompactedError, type WatchEvent, type WatchOptions } from './watch.js';
export { ChatClient } from './chat.js';
export { ChatStream, SseParser, type SseEvent, type StreamHost } from './chat-stream.js';
export {
  ChatError,
  ChatRequestError,
  NotAuthenticatedError,
  ForbiddenError,
  ChatNotFoundError,
  ConflictError,
  RateLimitedError,
} from './chat-types.js';
export type {
  ChatClientOptions,
  ChatMessage,
  RoomInfo,
  ChatConsistency,
  MessagesOptions,
  MessagesResult,
  StreamOptions,
  OutboxEntry,
  QueuedPost,
  FailoverInfo,
  ChatClientEvents,
  ChatStreamEvents,
} from './chat-types.js';
export { AuthAdmin, enableAuthWithRoot } from './auth.js';
export type { AuthStatus, UserInfo, RoleInfo, PermissionInfo } from './auth.js';
