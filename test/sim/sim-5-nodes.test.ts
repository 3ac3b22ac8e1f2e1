import { test } from 'node:test';
import { runSeeds } from './seeds.js';

test('simulation: 5 nodes, mixed faults, seeds 1-75: no violation', (t) => runSeeds(t, 1, 75, 5, 'mixed'));
test('simulation: 5 nodes, leader churn, seeds 1-25: no violation', (t) => runSeeds(t, 1, 25, 5, 'leader-churn'));
