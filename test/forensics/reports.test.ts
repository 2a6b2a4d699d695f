/**
 * The report builder's seams (a classification and a stack from outside, as a supervisor will give
 * them), the reaper's report for lost attempts, and the readable form.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatReport } from '../../src/forensics/format.ts';
import { buildHangReport, lostAttemptReport } from '../../src/forensics/report.ts';
import { StepForensics } from '../../src/forensics/step.ts';

const step = { runId: 'r1', stepName: 'spin', attempt: 2, tool: 'cpu', timeoutMs: 5000, startedAt: Date.now() - 7000 };

describe('report builder', () => {
  test('a classification and a captured stack from outside win, and give where and frames', () => {
    const stack = [
      'Error',
      '    at node:internal/timers:1:1',
      '    at spin (/srv/app/tools/cpu.ts:12:7)',
      '    at async Object.run (/srv/app/tools/cpu.ts:30:3)',
      '    at /srv/app/node_modules/lib/index.js:1:1',
    ].join('\n');
    const r = buildHangReport({
      trigger: 'stall',
      step,
      classification: { code: 'loop.blocked', summary: 'the event loop was blocked for 4.0 s in spin' },
      capturedStack: stack,
      forensics: new StepForensics(step, { capture: true }),
      lastLogs: ['t info started'],
    });
    assert.equal(r.classification.code, 'loop.blocked');
    assert.equal(r.trigger, 'stall');
    assert.deepEqual(r.where, { file: '/srv/app/tools/cpu.ts', line: 12, column: 7, fn: 'spin', source: 'captured stack' });
    assert.deepEqual(r.frames, ['spin (/srv/app/tools/cpu.ts:12:7)', 'async Object.run (/srv/app/tools/cpu.ts:30:3)']);
    assert.ok(r.ranMs >= 7000);
    assert.deepEqual(r.lastLogs, ['t info started']);
  });

  test('frames given as formatted lines (CDP call frames) work too', () => {
    const r = buildHangReport({ trigger: 'stall', step, classification: { code: 'loop.blocked', summary: 's' }, capturedStack: ['spin (/srv/app/tools/cpu.ts:12:7)'] });
    assert.equal(r.where?.file, '/srv/app/tools/cpu.ts');
  });
});

describe('lost attempts', () => {
  const at = (now: number) => ({ runId: 'r1', stepName: 'embed', attempt: 1, tool: 'embed', workerId: 'w1', leaseExpiresAt: now - 1000, now });

  test('a worker that is gone', () => {
    const r = lostAttemptReport({ ...at(Date.now()), worker: null });
    assert.equal(r.classification.code, 'worker.lost');
    assert.match(r.classification.summary, /no longer registered/);
    assert.equal(r.trigger, 'lost');
    assert.ok(r.notes.some((n) => /worker process/.test(n)));
  });

  test('a worker that stopped heartbeating', () => {
    const now = Date.now();
    const r = lostAttemptReport({ ...at(now), worker: { id: 'w1', pid: 42, host: 'h', lastHeartbeatAt: new Date(now - 20_000).toISOString(), info: { loopDelayP99Ms: 3.2 } } });
    assert.equal(r.classification.code, 'worker.lost');
    assert.match(r.classification.summary, /pid 42 on h\) last reported 20\.0 s ago/);
    assert.deepEqual((r.worker as { info: unknown }).info, { loopDelayP99Ms: 3.2 });
  });

  test('a live worker that did not renew this lease', () => {
    const now = Date.now();
    const r = lostAttemptReport({ ...at(now), worker: { id: 'w1', lastHeartbeatAt: new Date(now).toISOString() } });
    assert.equal(r.classification.code, 'lease.expired');
  });
});

describe('readable form', () => {
  test('cause first, then where, then the evidence', () => {
    const text = formatReport(
      {
        classification: { code: 'http.no_headers', summary: 'GET http://api/x sent its request and waited 2.0 s for response headers' },
        stepName: 'fetch_docs',
        attempt: 3,
        where: { file: '/repo/tools/docs.ts', line: 14, column: 9, fn: 'fetchDocs', source: 'http started here' },
        tool: 'docs',
        ranMs: 2300,
        timeoutMs: 2000,
        pending: [{ kind: 'http', what: 'GET http://api/x', phase: 'waiting_headers', msInPhase: 2000, peer: '10.0.0.1:80', bytesOut: 120, bytesIn: 0, msSinceLastByte: null, frame: 'fetchDocs (/repo/tools/docs.ts:14:9)' }],
        lastLogs: ['2026-01-01T00:00:00.000Z info fetching'],
      },
      { cwd: '/repo' },
    );
    const lines = text.split('\n');
    assert.equal(lines[0], 'fetch_docs attempt 3: http.no_headers - GET http://api/x sent its request and waited 2.0 s for response headers');
    assert.equal(lines[1], '  where: tools/docs.ts:14:9 in fetchDocs  (http started here)');
    assert.match(lines[2] ?? '', /tool docs, ran 2\.3 s of a 2\.0 s deadline/);
    assert.ok(lines.includes('    - http GET http://api/x | waiting headers 2.0 s | peer 10.0.0.1:80 | out 120 B in 0 B | no byte received'));
    assert.ok(lines.includes('        at fetchDocs (tools/docs.ts:14:9)'));
  });

  test('an old, minimal report still reads', () => {
    const text = formatReport({ classification: { code: 'handler.ignored_abort', summary: 'gone' }, tracked: [{ label: 'x', pendingMs: 5 }] }, { step: 'a' });
    assert.match(text.split('\n')[0] ?? '', /^a: handler\.ignored_abort - gone$/);
  });
});
