/** Experiment configurations: the full one behind `npm run experiments` and a tiny one (`--quick`) for the test. */

export interface DelaySetting {
  readonly label: string;
  readonly minDelay: number;
  readonly maxDelay: number;
}

export interface ExperimentConfig {
  readonly name: 'full' | 'quick';
  /** Measured time of one point, and the unmeasured warm-up before it. */
  readonly pointMs: number;
  readonly warmupMs: number;
  readonly keys: number;
  readonly valueSize: number;
  readonly putRatio: number;
  /** (a) quorum mode: followers, write quorums, delays, clients. */
  readonly quorumFollowers: number;
  readonly writeQuorums: readonly number[];
  readonly delays: readonly DelaySetting[];
  readonly quorumClients: number;
  /** (b) strategies side by side: clients. */
  readonly strategyClients: number;
  /** (c) raft: client counts. */
  readonly scaleClients: readonly number[];
  /** (d) raft failover: trials, writers, when the leader is killed and how long to watch after. */
  readonly failoverTrials: number;
  readonly failoverClients: number;
  readonly failoverKillAtMs: number;
  readonly failoverWatchMs: number;
  /** (e) raft node count: cluster sizes, client counts, and the measured time of each point (shorter). */
  readonly nodeCounts: readonly number[];
  readonly nodeCountClients: readonly number[];
  readonly nodeCountPointMs: number;
}

export const FULL: ExperimentConfig = {
  name: 'full',
  pointMs: 5000,
  warmupMs: 1000,
  keys: 100,
  valueSize: 100,
  putRatio: 0.5,
  quorumFollowers: 5,
  writeQuorums: [1, 2, 3, 4, 5],
  delays: [
    { label: '0.1–1 ms', minDelay: 0.1, maxDelay: 1 },
    { label: '10–100 ms', minDelay: 10, maxDelay: 100 },
  ],
  quorumClients: 8,
  strategyClients: 16,
  scaleClients: [1, 2, 4, 8, 16, 32, 64, 128, 256],
  failoverTrials: 5,
  failoverClients: 8,
  failoverKillAtMs: 1000,
  failoverWatchMs: 4000,
  nodeCounts: [3, 5, 7],
  nodeCountClients: [1, 64],
  nodeCountPointMs: 3000,
};

export const QUICK: ExperimentConfig = {
  name: 'quick',
  pointMs: 700,
  warmupMs: 200,
  keys: 20,
  valueSize: 32,
  putRatio: 0.5,
  quorumFollowers: 3,
  writeQuorums: [1, 3],
  delays: [
    { label: '0.1–1 ms', minDelay: 0.1, maxDelay: 1 },
    { label: '10–100 ms', minDelay: 10, maxDelay: 100 },
  ],
  quorumClients: 4,
  strategyClients: 4,
  scaleClients: [1, 8],
  failoverTrials: 1,
  failoverClients: 4,
  failoverKillAtMs: 500,
  failoverWatchMs: 3000,
  nodeCounts: [3, 5],
  nodeCountClients: [1, 4],
  nodeCountPointMs: 500,
};
