import { test } from 'node:test';
import { runSeeds } from './seeds.js';

test('simulation: 5 nodes, mixed faults, seeds 1001-1075: no violation', (t) => runSeeds(t, 1001, 75, 5, 'mixed'));
test('simulation: 5 nodes, leader churn, seeds 1001-1025: no violation', (t) =>
  runSeeds(t, 1001, 25, 5, 'leader-churn'));
