// The Bus contract against the in-process bus: one node by definition.
import { expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { busContract } from './bus.contract.js';

busContract(
  'memory',
  async (n) => {
    expect(n).toBe(1);
    return [new MemoryBus()];
  },
  { multiNode: false },
);

it('MemoryBus describes itself as memory', () => {
  expect(new MemoryBus().description).toBe('memory');
});
