/**
 * A shared/exclusive gate: batch handlers run under the shared side (concurrently with each
 * other), the roll-up repair under the exclusive side (alone). The repair deletes and rebuilds
 * whole days, which is only correct while no batch is being looked up or written.
 */
export interface RepairGate {
  shared<T>(fn: () => Promise<T>): Promise<T>;
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

export function createRepairGate(): RepairGate {
  let readers = 0;
  let writer: Promise<void> | null = null;
  let drained: (() => void) | null = null;
  return {
    async shared(fn) {
      while (writer) await writer;
      readers++;
      try {
        return await fn();
      } finally {
        readers--;
        if (readers === 0) drained?.();
      }
    },
    async exclusive(fn) {
      while (writer) await writer;
      let release!: () => void;
      writer = new Promise<void>((resolve) => {
        release = resolve;
      });
      if (readers > 0) await new Promise<void>((resolve) => (drained = resolve));
      drained = null;
      try {
        return await fn();
      } finally {
        writer = null;
        release();
      }
    },
  };
}
