/**
 * Provider limits' decisions (src/flow/slots.ts), without a store: a per-minute slot granted ahead
 * of its time, never before a slot already granted, and the caps held in every window.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide, MARGIN_MS, RESERVE_AHEAD_MS, stateOf, type SlotRow } from '../../src/flow/slots.ts';

const WINDOW = 1000 + MARGIN_MS;
const rpm1200 = { requestsPerMinute: 1200 }; // 20 in any second, one every WINDOW / 20 ms
const spacing = WINDOW / 20;

/** Takes slots for `n` calls asked at `now` one after another, as a store would record them. */
function grantAll(limits: typeof rpm1200, n: number, now: number): { slots: SlotRow[]; refusedAt: number | undefined } {
  const slots: SlotRow[] = [];
  for (let i = 0; i < n; i++) {
    const a = decide(limits, 0, slots, 1, now);
    if (!a.granted) return { slots, refusedAt: a.retryAt };
    slots.push({ at: a.at ?? now, tokens: 1, until: null });
  }
  return { slots, refusedAt: undefined };
}

describe('provider slots', () => {
  test('a call asked right after another is granted the next spaced time, up to RESERVE_AHEAD_MS ahead', () => {
    const now = 1_000_000;
    const { slots, refusedAt } = grantAll(rpm1200, 10, now);
    const ahead = Math.floor(RESERVE_AHEAD_MS / spacing) + 1; // the one at now, then every spacing within the reserve
    assert.equal(slots.length, ahead);
    slots.forEach((s, i) => assert.equal(s.at, now + Math.ceil(i * spacing), `slot ${i}`));
    for (let i = 1; i < slots.length; i++) assert.ok((slots[i] as SlotRow).at - (slots[i - 1] as SlotRow).at >= spacing - 1);
    assert.ok(refusedAt !== undefined && refusedAt > now + RESERVE_AHEAD_MS, 'the next is refused, with the time its slot is expected');
    const refused = decide(rpm1200, 0, slots, 1, now);
    assert.ok(!refused.granted && refused.limit === 'requestsPerMinute' && refused.cap === 20);
    assert.equal(refused.used, 1, 'used counts what is due by now, not the slots granted ahead');
  });

  test('slots granted over time hold the cap in every window and the spacing between any two', () => {
    const slots: SlotRow[] = [];
    let now = 5_000_000;
    while (slots.length < 200) {
      const a = decide(rpm1200, 0, slots, 1, now);
      if (a.granted) slots.push({ at: a.at ?? now, tokens: 1, until: null });
      else now = Math.max(now + 1, a.retryAt - RESERVE_AHEAD_MS);
    }
    const at = slots.map((s) => s.at);
    for (let i = 1; i < at.length; i++) assert.ok((at[i] as number) >= (at[i - 1] as number), 'in order');
    for (let i = 20; i < at.length; i++) assert.ok((at[i] as number) - (at[i - 20] as number) >= WINDOW, `21 slots span at least ${WINDOW} ms`);
    // Evenly spread: 200 slots take 199 spacings.
    assert.ok((at.at(-1) as number) - (at[0] as number) <= Math.ceil(199 * spacing) + 199);
  });

  test('tokens: a call that does not fit waits for the window to drop enough; a huge one goes alone', () => {
    const limits = { tokensPerMinute: 6000 }; // 100 a window
    const now = 1_000_000;
    const slots: SlotRow[] = [{ at: now - 500, tokens: 60, until: null }, { at: now - 100, tokens: 30, until: null }];
    const a = decide(limits, 0, slots, 50, now);
    assert.ok(!a.granted && a.limit === 'tokensPerMinute');
    assert.equal(a.retryAt, now - 500 + WINDOW, 'when the 60 leave');
    assert.equal(a.used, 90);
    assert.deepEqual(decide(limits, 0, slots, 10, now), { granted: true, at: now });
    const huge = decide(limits, 0, slots, 500, now);
    assert.ok(!huge.granted && huge.retryAt === now - 100 + WINDOW, 'once the window is empty');
    assert.equal(decide(limits, 0, [], 500, now).granted, true);
  });

  test('a pause and a full concurrency limit are not granted ahead', () => {
    const now = 1_000_000;
    assert.deepEqual(decide(rpm1200, now + 50, [], 1, now), { granted: false, limit: 'paused', retryAt: now + 50, used: 0, cap: 0 });
    const busy = decide({ concurrency: 1 }, 0, [{ at: now - 10, tokens: 0, until: now + 5000 }], 1, now);
    assert.ok(!busy.granted && busy.limit === 'concurrency');
    assert.deepEqual(decide({ concurrency: 2 }, 0, [{ at: now - 10, tokens: 0, until: now + 5000 }], 1, now), { granted: true, at: now });
  });

  test('the state counts what is due by now', () => {
    const now = 1_000_000;
    const s = stateOf('p', rpm1200, 0, [{ at: now - 2000, tokens: 5, until: null }, { at: now - 10, tokens: 5, until: now + 100 }, { at: now + 40, tokens: 5, until: now + 100 }], now);
    assert.deepEqual(s, { name: 'p', pausedUntil: 0, inFlight: 2, requestsInWindow: 1, tokensInWindow: 5 });
  });
});
