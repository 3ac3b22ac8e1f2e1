import { test } from 'node:test';
import { runSeeds } from './seeds.js';

// 150 seeds of 3-node clusters: every fault kind, then leader churn. With sim-5-nodes: 500 seeds in all.
test('simulation: 3 nodes, mixed faults, seeds 1-110: no violation', (t) => runSeeds(t, 1, 110, 3, 'mixed'));
test('simulation: 3 nodes, leader churn, seeds 1-40: no violation', (t) => runSeeds(t, 1, 40, 3, 'leader-churn'));
