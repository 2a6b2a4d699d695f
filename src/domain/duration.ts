/**
 * Durations as people write them: `90s`, `15m`, `12h`, `30d`, `2w`, or several parts (`1d12h`).
 * Used where a user says how old something is: `runs prune --older-than 30d`, `runs list --since
 * 2h`, the `retention` setting.
 */

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const PART = /(\d+)(ms|s|m|h|d|w)/g;
const WHOLE = /^(?:\d+(?:ms|s|m|h|d|w))+$/;

/** Milliseconds in `text`, or undefined when it is not a duration (`30d`, `1h30m`; no sign, no spaces). */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (!WHOLE.test(t)) return undefined;
  let ms = 0;
  for (const m of t.matchAll(PART)) ms += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? 0);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** `30d`, `12h`, `1d12h`: the shortest way to write `ms` in the units above. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [['w', UNIT_MS.w], ['d', UNIT_MS.d], ['h', UNIT_MS.h], ['m', UNIT_MS.m], ['s', UNIT_MS.s], ['ms', 1]] as const) {
    if (size === undefined) continue;
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}

export const DURATION_HELP = 'a duration such as 90s, 15m, 12h, 30d, 2w or 1d12h';
