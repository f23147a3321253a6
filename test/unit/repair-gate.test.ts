import { describe, expect, it } from 'vitest';
import { createRepairGate } from '../../processors/repair-gate.ts';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('repair gate', () => {
  it('shared sections run together; an exclusive section waits for them and blocks new ones', async () => {
    const gate = createRepairGate();
    const log: string[] = [];
    let openA!: () => void;
    const a = gate.shared(async () => {
      log.push('a+');
      await new Promise<void>((r) => (openA = r));
      log.push('a-');
    });
    const b = gate.shared(async () => {
      log.push('b');
    });
    await tick();
    const x = gate.exclusive(async () => {
      log.push('x+');
      await tick();
      log.push('x-');
    });
    await tick();
    const c = gate.shared(async () => {
      log.push('c');
    });
    await tick();
    expect(log).toEqual(['a+', 'b']); // x waits for a; c waits for x
    openA();
    await Promise.all([a, b, x, c]);
    expect(log).toEqual(['a+', 'b', 'a-', 'x+', 'x-', 'c']);
  });

  it('a failing section releases the gate', async () => {
    const gate = createRepairGate();
    await expect(gate.exclusive(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(gate.shared(async () => 1)).resolves.toBe(1);
  });
});
