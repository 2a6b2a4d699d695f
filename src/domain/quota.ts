/**
 * How a per-minute quota becomes a per-second one. Providers enforce per-minute limits over much
 * shorter windows (OpenAI documents that 60,000 requests a minute may be enforced as 1,000 a
 * second), so both the lab's `quota` mode and runwarden's own provider limits (src/flow) hold a
 * limit of `perMinute` as at most `cap` in any `windowMs`: one second, or for limits under 60 a
 * minute, the time one unit takes (rpm=30: one request in any 2 s).
 */
export interface Quantum {
  windowMs: number;
  cap: number;
}

export function quantize(perMinute: number): Quantum {
  if (perMinute >= 60) return { windowMs: 1000, cap: Math.floor(perMinute / 60) };
  return { windowMs: Math.ceil(60_000 / perMinute), cap: 1 };
}
