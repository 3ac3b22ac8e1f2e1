import type { Message, NodeId, ProposeResult, ReadIndexResult, Ready, Role } from '../raft/types.js';

/** What the host loop needs of the Raft core (`RaftNode` from src/raft/node.ts satisfies it). */
export interface RaftCore {
  tick(): void;
  step(m: Message): void;
  propose(data: Uint8Array | readonly Uint8Array[]): ProposeResult;
  readIndex(ctx: string): ReadIndexResult;
  hasReady(): boolean;
  ready(): Ready;
  advance(rd: Ready, durable?: boolean): void;
  canAdvanceBeforeDurable(rd: Ready): boolean;
  persisted(index: number, term: number): void;
  drainEarlyMessages(): Message[];
  hasLease(): boolean;
  sendCommitUpdates(): void;
  status(): CoreStatus;
}

export interface CoreStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly firstIndex: number;
  readonly leader: NodeId;
  readonly role: Role;
  readonly progress: readonly {
    readonly id: NodeId;
    readonly match: number;
    readonly next: number;
    readonly state: string;
    readonly recentActive: boolean;
  }[];
}

export interface TransportFaults {
  drop?: NodeId[];
  delayMs?: number;
}

/** What the host needs of the peer transport (`TcpTransport` from src/net satisfies it). */
export interface PeerTransport {
  send(msgs: readonly Message[]): void;
  setFaults(faults: TransportFaults): void;
  stats(): unknown;
  close(): Promise<void>;
}
