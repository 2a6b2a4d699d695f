/**
 * Claim loops per process. On PostgreSQL several loops share the process's slots: each Worker runs
 * its transactions one after another (claim, then flush, ...), so one loop leaves the database idle
 * while it waits on a round trip. Measured with no-op steps on 2 vCPUs: 1 loop ~1000 steps/s,
 * 2 loops ~1700, 4 loops ~1850 (bench/postgres-engine.ts): one loop per 64 slots, at most 4 (more
 * only add contention on 2-8 vCPUs). On SQLite one: its transactions run one at a time anyway.
 * Each loop is a worker of its own in the workers table (`<id>-<i>`).
 */
export function loopsFor(concurrency: number, dialect: 'sqlite' | 'postgres'): number {
  return dialect === 'sqlite' ? 1 : Math.min(4, Math.max(1, Math.ceil(concurrency / 64)));
}
