/**
 * Entry point of a tool thread (pool.ts starts it; never run by hand). It loads the tools modules,
 * then runs the attempts the worker sends, one at a time, with the same StepRun as inline tools:
 * its own deadline timer, forensics, hang reports and containment of the processes and threads the
 * tool starts. Events and the result go back as messages. The worker stops the thread
 * (`terminate()`) when a tool ignores its abort, so whatever that tool still does ends with it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setForensicsEnabled } from '../../forensics/channels.ts';
import { currentTid } from '../../forensics/procfs.ts';
import { registerSecret } from '../../forensics/redact.ts';
import { setReportConfig } from '../../forensics/resources.ts';
import { loadToolModules } from '../../tools/load.ts';
import { ToolRegistry } from '../../tools/registry.ts';
import { installProcessGuards } from '../guards.ts';
import { StepRun } from '../run-step.ts';
import type { FromThread, ToThread, ToolThreadData } from './protocol.ts';

const port = parentPort;
if (!port) throw new Error('tool-thread.ts runs as a worker thread');
const data = workerData as ToolThreadData;

const post = (m: FromThread): void => port.postMessage(m);

let current: StepRun | undefined;

async function start(): Promise<ToolRegistry> {
  for (const s of data.secrets) registerSecret(s);
  setReportConfig(data.reportConfig);
  setForensicsEnabled(data.forensics);
  installProcessGuards((line) => post({ t: 'log', line }));
  const tools = new ToolRegistry();
  await loadToolModules(tools, data.modules, data.cwd);
  return tools;
}

const ready = start();
ready.then(
  (tools) => post({ t: 'ready', tid: currentTid(), tools: tools.names() }),
  (err: unknown) => post({ t: 'start_failed', message: err instanceof Error ? err.message : String(err) }),
);

port.on('message', (m: ToThread) => {
  if (m.t === 'abort') {
    current?.abort(m.cause);
    post({ t: 'abort_seen' });
    return;
  }
  ready
    .then(async (tools) => {
      const run = new StepRun(m.claim, (type, d) => post({ t: 'event', type, data: d }), tools, m.graceMs, {
        mode: 'thread',
        marker: m.marker,
        onSpawned: (info) => post({ t: 'spawned', ...info }),
        publishText: (delta) => post({ t: 'delta', delta }),
        onDraft: (trigger, report) => post({ t: 'draft', trigger, report }),
        onClock: ({ waiting }) => post({ t: 'waiting', waiting: waiting ? { provider: waiting.provider, limit: waiting.limit, used: waiting.used, cap: waiting.cap, retryAt: waiting.retryAt } : null }),
      });
      current = run;
      const result = await run.execute();
      if (current === run) current = undefined;
      post({ t: 'result', result });
    })
    .catch((err: unknown) => post({ t: 'log', line: `tool thread could not run ${m.claim.stepName}: ${err instanceof Error ? err.message : String(err)}` }));
});
