/**
 * Provider limits in the store: the same SQL on both dialects (numbered parameters; SQLite reads
 * `$n` as `?n`), over the two tables of migration 8. `take` is one write transaction that locks the
 * provider's row (PostgreSQL: an upsert's row lock; SQLite: writers take turns anyway), drops slots that left
 * every window, reads the rest, asks `decide` and records the grant.
 */
import { decide, stateOf, windowStart, type LimitState, type ProviderLimits, type SlotAnswer, type SlotRequest, type SlotRow } from './slots.ts';

type Row = Record<string, unknown>;
export type LimitQuery = (sql: string, params: unknown[]) => Promise<Row[]>;

/** What a dialect lends: a write transaction and a plain read. */
export interface LimitSql {
  write<T>(fn: (q: LimitQuery) => Promise<T>): Promise<T>;
  read: LimitQuery;
}

export interface ProviderLimitStore {
  /** Grants a call now, or says which limit holds it and when to ask again. */
  take(req: SlotRequest): Promise<SlotAnswer>;
  /** The call is being sent now: its slot counts from `at` (later than its grant), as the provider counts it. */
  sent(id: string, at: number): Promise<void>;
  /** The call ended: its concurrency slot is free; `tokens` (its usage) replaces the estimate. */
  release(id: string, tokens: number | null): Promise<void>;
  /** No call to the provider until `until` (a 429/529's retry-after), for every worker. */
  pause(name: string, until: number): Promise<void>;
  pausedUntil(name: string): Promise<number>;
  state(name: string, limits: ProviderLimits, now: number): Promise<LimitState>;
}

const toSlot = (r: Row): SlotRow => ({ at: Number(r.at), tokens: Number(r.tokens), until: r.until === null || r.until === undefined ? null : Number(r.until) });

export function limitStore(sql: LimitSql): ProviderLimitStore {
  const recent = async (q: LimitQuery, name: string, limits: ProviderLimits, now: number): Promise<SlotRow[]> =>
    (await q('SELECT at, tokens, until FROM provider_slots WHERE name = $1 AND (at > $2 OR until > $3)', [name, windowStart(limits, now), now])).map(toSlot);
  return {
    take: (req) =>
      sql.write(async (q) => {
        // An upsert that changes nothing takes the row's lock (PostgreSQL) and reads it in one statement.
        const [row] = await q('INSERT INTO provider_limits (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING paused_until', [req.name]);
        // The time is read once the row is held: takers hold it in turn, so the times they record
        // only grow, and none decides on an older time than a slot another one already dropped.
        const now = Math.max(req.now, Date.now());
        await q('DELETE FROM provider_slots WHERE name = $1 AND at <= $2 AND (until IS NULL OR until <= $3)', [req.name, windowStart(req.limits, now), now]);
        const answer = decide(req.limits, Number(row?.paused_until ?? 0), await recent(q, req.name, req.limits, now), req.tokens, now);
        if (answer.granted) {
          const at = answer.at ?? now;
          const until = req.limits.concurrency === undefined ? null : req.leaseUntil;
          await q('INSERT INTO provider_slots (id, name, at, tokens, until) VALUES ($1, $2, $3, $4, $5)', [req.id, req.name, at, Math.max(0, Math.round(req.tokens)), until]);
          return { granted: true, at };
        }
        return answer;
      }),
    sent: async (id, at) => {
      await sql.write((q) => q('UPDATE provider_slots SET at = CASE WHEN at < $2 THEN $2 ELSE at END WHERE id = $1', [id, at]));
    },
    release: async (id, tokens) => {
      await sql.write((q) =>
        q('UPDATE provider_slots SET until = NULL, tokens = CASE WHEN $2 < 0 THEN tokens ELSE $2 END WHERE id = $1', [id, tokens === null ? -1 : Math.max(0, Math.round(tokens))]),
      );
    },
    pause: async (name, until) => {
      await sql.write((q) =>
        q(
          `INSERT INTO provider_limits (name, paused_until) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE SET paused_until = CASE WHEN provider_limits.paused_until > $2 THEN provider_limits.paused_until ELSE $2 END`,
          [name, until],
        ),
      );
    },
    pausedUntil: async (name) => Number((await sql.read('SELECT paused_until FROM provider_limits WHERE name = $1', [name]))[0]?.paused_until ?? 0),
    state: async (name, limits, now) => {
      const paused = Number((await sql.read('SELECT paused_until FROM provider_limits WHERE name = $1', [name]))[0]?.paused_until ?? 0);
      return stateOf(name, limits, paused, await recent(sql.read, name, limits, now), now);
    },
  };
}
