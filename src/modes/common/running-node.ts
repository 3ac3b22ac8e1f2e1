/** A started node of a non-raft mode, as the mode entry points return it. */
export interface RunningNode {
  readonly url: string;
  readonly id: string;
  close(): Promise<void>;
}
