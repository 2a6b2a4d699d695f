/**
 * The attempt clock (src/worker/attempt-clock.ts): the deadline stands still while a call waits for
 * capacity, and the waits are bounded by queueTimeoutMs. Node's mock timers drive it, so nothing
 * here depends on how fast the machine is.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { AttemptClock, type CapacityWait } from '../../src/worker/attempt-clock.ts';

const WAIT: CapacityWait = { provider: 'p', limit: 'concurrency', used: 1, cap: 1, retryAt: 0 };

describe('AttemptClock', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  function clock(queueTimeoutMs: number | null) {
    const fired: string[] = [];
    let changes = 0;
    const c = new AttemptClock({
      deadlineAt: Date.now() + 1000,
      queueTimeoutMs,
      onDeadline: () => fired.push(`deadline@${Date.now() - 1_000_000}`),
      onQueueTimeout: () => fired.push(`queue@${Date.now() - 1_000_000}`),
      onChange: () => changes++,
    });
    c.start();
    return { c, fired, changes: () => changes };
  }

  test('without a wait the deadline fires at its time', () => {
    const { fired } = clock(null);
    mock.timers.tick(999);
    assert.deepEqual(fired, []);
    mock.timers.tick(1);
    assert.deepEqual(fired, ['deadline@1000']);
  });

  test('a wait moves the deadline by its length, and the moving deadline is readable meanwhile', () => {
    const { c, fired, changes } = clock(null);
    mock.timers.tick(400);
    const hold = c.hold(WAIT);
    assert.equal(c.waiting?.provider, 'p');
    assert.equal(c.waiting?.since, 1_000_400);
    mock.timers.tick(5000);
    assert.deepEqual(fired, [], 'no deadline while the call waits, and no queue timeout without a bound');
    assert.equal(c.deadlineAt, 1_000_000 + 1000 + 5000);
    assert.equal(hold.end(), 5000);
    assert.equal(hold.end(), 0, 'a second end does nothing');
    assert.equal(c.waiting, null);
    assert.equal(c.waitedMs, 5000);
    mock.timers.tick(599);
    assert.deepEqual(fired, []);
    mock.timers.tick(1);
    assert.deepEqual(fired, ['deadline@6000']);
    assert.equal(changes(), 2, 'told when the wait began and when it ended');
  });

  test('overlapping waits stop the clock once: from the first start to the last end', () => {
    const { c, fired } = clock(null);
    mock.timers.tick(100);
    const a = c.hold(WAIT);
    mock.timers.tick(100);
    const b = c.hold({ ...WAIT, limit: 'requestsPerMinute' });
    mock.timers.tick(100);
    a.end();
    assert.equal(c.waiting?.limit, 'requestsPerMinute', 'the wait still open is what it waits for');
    mock.timers.tick(100);
    b.end();
    assert.equal(c.waitedMs, 300);
    assert.equal(c.deadlineAt, 1_000_000 + 1300);
    mock.timers.tick(899);
    assert.deepEqual(fired, []);
    mock.timers.tick(1);
    assert.deepEqual(fired, ['deadline@1300']);
  });

  test('queueTimeoutMs bounds all the waits of the attempt together', () => {
    const { c, fired } = clock(500);
    c.hold(WAIT).end();
    mock.timers.tick(100);
    const first = c.hold(WAIT);
    mock.timers.tick(300);
    first.end();
    mock.timers.tick(100);
    c.hold(WAIT);
    mock.timers.tick(199);
    assert.deepEqual(fired, []);
    mock.timers.tick(1);
    assert.deepEqual(fired, ['queue@700'], '300 ms then 200 ms of waiting: 500 in all');
  });

  test('stop disarms it', () => {
    const { c, fired } = clock(null);
    c.stop();
    mock.timers.tick(5000);
    assert.deepEqual(fired, []);
  });
});
