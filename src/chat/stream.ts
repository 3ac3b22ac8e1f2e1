/**
 * Live delivery: Server-Sent Events streams of a room's messages, served by every node from its own
 * applied state. A subscriber has a cursor (the next `seq` it needs); it reads from the database while it
 * is behind and is fed each applied batch directly once it has caught up, so a client that reconnects with
 * `Last-Event-ID: n` (to this node or another) gets `n+1, n+2, ...` with no gap and no duplicate.
 * Slow readers are paced by the socket (`drain`), never buffered without bound.
 */
import type { ServerResponse } from 'node:http';
import type { ChatMessage } from './commands.js';
import type { ChatListener, ChatStateMachine } from './state-machine.js';

const PAGE = 256;
const HEARTBEAT_MS = 15_000;

interface Subscriber {
  readonly room: string;
  readonly res: ServerResponse;
  /** Next seq this subscriber needs. */
  next: number;
  /** Reading its backlog from the database (or waiting for `drain`): live batches only wake it. */
  busy: boolean;
  closed: boolean;
}

function frame(m: ChatMessage): string {
  const data = JSON.stringify({ seq: m.seq, room: m.room, user: m.user, text: m.text, time: m.time });
  return `id: ${m.seq}\ndata: ${data}\n\n`;
}

export class StreamHub implements ChatListener {
  private readonly rooms = new Map<string, Set<Subscriber>>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  delivered = 0;

  constructor(private readonly sm: ChatStateMachine) {
    this.unsubscribe = sm.subscribe(this);
    this.heartbeat = setInterval(() => this.ping(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  get subscribers(): number {
    let n = 0;
    for (const s of this.rooms.values()) n += s.size;
    return n;
  }

  /** Starts streaming `room` after `after` on `res` (headers not yet sent). */
  open(room: string, after: number, res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // Ask EventSource clients to reconnect quickly after a failure.
    res.write('retry: 1000\n\n');
    const sub: Subscriber = { room, res, next: after + 1, busy: false, closed: false };
    let set = this.rooms.get(room);
    if (set === undefined) this.rooms.set(room, (set = new Set()));
    set.add(sub);
    const done = () => this.drop(sub);
    res.on('close', done);
    res.on('error', done);
    this.catchUp(sub);
  }

  messages(batch: readonly ChatMessage[]): void {
    let frames: Map<ChatMessage, string> | undefined;
    for (const m of batch) {
      const subs = this.rooms.get(m.room);
      if (subs === undefined || subs.size === 0) continue;
      frames ??= new Map();
      let text = frames.get(m);
      if (text === undefined) frames.set(m, (text = frame(m)));
      for (const sub of subs) {
        if (sub.busy || sub.closed) continue;
        if (sub.next !== m.seq) {
          // Behind (or ahead after a reset): read from the database instead.
          if (sub.next < m.seq) this.catchUp(sub);
          continue;
        }
        sub.next++;
        this.delivered++;
        if (!sub.res.write(text)) this.waitDrain(sub);
      }
    }
  }

  reset(): void {
    for (const subs of this.rooms.values()) for (const sub of subs) this.catchUp(sub);
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.unsubscribe();
    for (const subs of this.rooms.values()) for (const sub of subs) sub.res.end();
    this.rooms.clear();
  }

  private drop(sub: Subscriber): void {
    sub.closed = true;
    const set = this.rooms.get(sub.room);
    set?.delete(sub);
    if (set !== undefined && set.size === 0) this.rooms.delete(sub.room);
  }

  private waitDrain(sub: Subscriber): void {
    sub.busy = true;
    sub.res.once('drain', () => {
      sub.busy = false;
      this.catchUp(sub);
    });
  }

  /** Writes the subscriber's backlog from the database, page by page, until it is caught up or blocked. */
  private catchUp(sub: Subscriber): void {
    if (sub.closed) return;
    sub.busy = true;
    for (;;) {
      const room = this.sm.room(sub.room);
      if (room === undefined || sub.next > room.lastSeq) break;
      const page = this.sm.tables.messagesAfter(sub.room, sub.next - 1, PAGE);
      if (page.length === 0) break;
      let ok = true;
      for (const m of page) {
        ok = sub.res.write(frame(m));
        sub.next = m.seq + 1;
        this.delivered++;
      }
      if (!ok) {
        this.waitDrain(sub);
        return;
      }
    }
    sub.busy = false;
  }

  private ping(): void {
    for (const subs of this.rooms.values()) for (const sub of subs) if (!sub.busy) sub.res.write(': ping\n\n');
  }
}
