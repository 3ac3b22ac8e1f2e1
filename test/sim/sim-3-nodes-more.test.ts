import { test } from 'node:test';
import { runSeeds } from './seeds.js';

test('simulation: 3 nodes, mixed faults, seeds 1001-1110: no violation', (t) => runSeeds(t, 1001, 110, 3, 'mixed'));
test('simulation: 3 nodes, leader churn, seeds 1001-1040: no violation', (t) =>
  runSeeds(t, 1001, 40, 3, 'leader-churn'));
