import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RaftNode } from '../../src/raft/node.js';
import type { Entry, NodeId, Role } from '../../src/raft/types.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { InvariantChecker, type NodeView } from '../../src/sim/invariants.js';

const PEERS = [1, 2, 3, 4, 5];

/** Just what the checker reads of a node: role, term, commit index and log. */
function view(id: NodeId, role: Role, term: number, commit: number, log: Entry[]): NodeView {
  const storage = new MemoryStorage(PEERS);
  if (log.length > 0) storage.append(log);
  const node = {
    currentRole: role,
    currentTerm: term,
    commitIndex: commit,
    firstIndex: 1,
    logEntries: (lo: number, hi: number) => log.filter((e) => e.index >= lo && e.index < hi),
    status: () => ({ term, firstIndex: 1, lastIndex: log.length }),
  };
  return { id, up: true, node: node as unknown as RaftNode, storage };
}

const ent = (index: number, term: number): Entry => ({ index, term, type: 'noop', data: new Uint8Array(0) });

test('leader completeness: a leader of an older term elected late need not hold what a newer term committed', () => {
  const checker = new InvariantChecker(3, () => 0);
  const old = [ent(1, 1), ent(2, 4)];
  const newer = [...old, ent(3, 6)];
  // Term 6 commits entry 3 on nodes 1-3 (leader 1).
  const nodes = [
    view(1, 'leader', 6, 3, newer),
    view(2, 'follower', 6, 3, newer),
    view(3, 'follower', 6, 3, newer),
    view(4, 'follower', 4, 2, old),
    view(5, 'follower', 4, 2, old),
  ];
  checker.afterStep(nodes);
  assert.deepEqual(checker.violations, []);
  // Node 4 wins term 5 on delayed votes (4, 5 and node 2 before it moved on): it lacks entry 3, as it may.
  nodes[3] = view(4, 'leader', 5, 2, old);
  checker.afterStep(nodes);
  assert.deepEqual(checker.violations, []);
  // A leader of term 7 without entry 3 breaks the property.
  nodes[4] = view(5, 'leader', 7, 2, old);
  checker.afterStep(nodes);
  assert.equal(checker.violations.length, 1);
  assert.match(checker.violations[0] as string, /leader completeness: leader 5 of term 7 lacks committed entry 3/);
});
