/**
 * Entry point of a supervised worker process (spawned by supervisor.ts, never run by hand). It waits
 * for its `init` order on the IPC channel, then runs claim loops (`Worker`s) on the shared store,
 * with:
 * - a watchdog (watchdog.ts) that reports a blocked event loop through the report pipe;
 * - a heartbeat to the supervisor every `reportMs` (loop delay, memory, running steps); the lease
 *   renewals of its Workers are its heartbeat to the store;
 * - on SQLite, the relay of store notifications (they do not cross processes by themselves);
 * - an `exit` hook that tells the supervisor which step called `process.exit`, and from where.
 * It stops on a `stop` order, SIGTERM or SIGINT (drain, hand back, exit 0; a second signal exits at
 * once), and when the supervisor goes away (IPC channel closed: running steps are handed back at
 * once and the process exits, so that no worker outlives its supervisor).
 */
import { writeSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { snapshotProcess } from '../telemetry/metrics.ts';
import type { TextDelta } from '../domain/records.ts';
import { currentStep } from '../worker/context.ts';
import { killWorkerLeftovers, WORKER_TAG_ENV } from '../worker/containment/processes.ts';
import { startWorkerProcess, type WorkerProcess } from '../process/worker-process.ts';
import { REPORT_FD, type BeatMessage, type ExitReport, type FromWorker, type InitMessage, type StepRef, type ToWorker } from './protocol.ts';
import { startWatchdog, type Watchdog } from './watchdog.ts';

/** A worker that received no `init` within this long was not started by a supervisor: it exits. */
const INIT_TIMEOUT_MS = 10_000;
/** Beyond the drain and the abort grace, how long stopping may take before the process exits anyway. */
const STOP_SLACK_MS = 5000;
/** Metrics ride on every 4th heartbeat: /metrics is at most ~1 s behind the workers (REPORT_MS 250). */
const METRICS_EVERY_BEATS = 4;

// Once the supervisor is gone, so are the readers of our stdout and stderr: a write then fails
// with EPIPE, asynchronously, as an 'error' event. Unhandled, each would be an uncaught exception
// whose log line is another failing write, and so on: the process would spin on it.
let quiet = false;
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', () => {
    quiet = true;
  });
}

const log = (line: string): void => {
  // Synchronous on pipes (Linux): the supervisor has every line, even the one before a crash.
  if (!quiet) process.stderr.write(`${line}\n`);
};

function send(msg: FromWorker): void {
  if (!process.connected) return;
  process.send?.(msg, (err: Error | null) => {
    // The channel closed under us: the 'disconnect' handler stops the process.
    if (err && process.connected) log(`ipc send failed: ${err.message}`);
  });
}

let exiting = false;
function exit(code: number): never {
  exiting = true;
  process.exit(code);
}

// Which step called process.exit (a tool that does kills every step of this worker): written in the
// exit hook, synchronously, with the stack of the call, before the process is gone.
process.on('exit', (code) => {
  if (exiting) return;
  const scope = currentStep();
  const holder: { stack?: string } = {};
  const saved = Error.stackTraceLimit;
  Error.stackTraceLimit = 50;
  Error.captureStackTrace(holder);
  Error.stackTraceLimit = saved;
  const report: ExitReport = {
    t: 'exit',
    code,
    step: scope ? { runId: scope.runId, stepName: scope.stepName, attempt: scope.attempt, tool: scope.tool } : null,
    stack: holder.stack ?? '',
  };
  try {
    writeSync(REPORT_FD, `${JSON.stringify(report)}\n`);
  } catch {
    // The supervisor is gone: nobody to tell.
    exiting = true;
  }
});

async function main(init: InitMessage): Promise<void> {
  const { config } = init;
  let proc: WorkerProcess;
  try {
    // The supervisor's process migrated the schema and reaps expired leases.
    proc = await startWorkerProcess(config, {
      env: init.env,
      cwd: init.cwd,
      log,
      drainMs: config.drainMs,
      ...(init.labUrl ? { labUrl: init.labUrl } : {}),
      idPrefix: `${init.idPrefix}-${process.pid}`,
      migrate: false,
      reaper: false,
      onUncontained: (why) => {
        log(`asking to be replaced: ${why}`);
        send({ t: 'recycle', why });
      },
    });
  } catch (err) {
    send({ t: 'start_failed', message: (err as Error).message });
    log(`worker process could not start: ${(err as Error).message}`);
    exit(1);
  }
  const { store, workers } = proc;

  const running = (): StepRef[] => workers.flatMap((w) => w.running());
  // stallMs 0: no watchdog (benchmarks measure what it costs).
  const watchdog: Watchdog | undefined = init.stallMs <= 0 ? undefined : startWatchdog({
    beatMs: init.beatMs,
    stallMs: init.stallMs,
    reportFd: REPORT_FD,
    probe: () => {
      const scope = currentStep();
      let step: StepRef | null = null;
      if (scope) {
        const r = running().find((s) => s.runId === scope.runId && s.stepName === scope.stepName && s.attempt === scope.attempt);
        step = { runId: scope.runId, stepName: scope.stepName, attempt: scope.attempt, tool: scope.tool, ...(r?.deadlineAt !== undefined ? { deadlineAt: r.deadlineAt } : {}) };
      }
      const db = (store as { db?: { isTransaction?: boolean } }).db;
      return { step, inTransaction: store.dialect === 'sqlite' && db?.isTransaction === true };
    },
    onError: (err) => log(`watchdog thread failed: ${err.message}`),
  });

  // Store notifications across processes (SQLite): 'events' (SSE wake-ups in the API process) and
  // 'ready' (wake the sibling workers) go up; 'ready' and 'cancel' come down. What came down is not
  // sent back up.
  let relaying = false;
  if (init.relay) {
    let pendingReady = false;
    const pendingRuns = new Set<string>();
    let pendingDeltas: TextDelta[] = [];
    let scheduled = false;
    const flush = (): void => {
      scheduled = false;
      if (!pendingReady && pendingRuns.size === 0 && pendingDeltas.length === 0) return;
      send({
        t: 'notify',
        ...(pendingReady ? { ready: true } : {}),
        ...(pendingRuns.size > 0 ? { runIds: [...pendingRuns] } : {}),
        ...(pendingDeltas.length > 0 ? { deltas: pendingDeltas } : {}),
      });
      pendingReady = false;
      pendingRuns.clear();
      pendingDeltas = [];
    };
    store.subscribe((n) => {
      if (relaying) return;
      if (n.kind === 'events') for (const id of n.runIds) pendingRuns.add(id);
      else if (n.kind === 'ready') pendingReady = true;
      else if (n.kind === 'delta') pendingDeltas.push(n.delta);
      else return;
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  }

  const loop = monitorEventLoopDelay({ resolution: 20 });
  if (init.reportMs > 0) loop.enable();
  const ms = (ns: number): number => (Number.isFinite(ns) ? Math.round(ns / 1e4) / 100 : 0);
  let beats = 0;
  const beat = init.reportMs <= 0 ? undefined : setInterval(() => {
    const mem = process.memoryUsage();
    beats++;
    const msg: BeatMessage = {
      t: 'beat',
      at: Date.now(),
      loopDelayP99Ms: ms(loop.percentile(99)),
      loopDelayMaxMs: ms(loop.max),
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      steps: running().slice(0, 100),
      ...(beats % METRICS_EVERY_BEATS === 1 ? { metrics: snapshotProcess() } : {}),
    };
    loop.reset();
    send(msg);
  }, init.reportMs);

  let stopping: Promise<void> | undefined;
  const stop = (why: string): Promise<void> =>
    (stopping ??= (async () => {
      log(`stopping (${why}): running steps get ${config.drainMs} ms to finish, then are handed back`);
      setTimeout(() => {
        log(`did not stop within ${config.drainMs + config.abortGraceMs + STOP_SLACK_MS} ms; exiting`);
        exit(1);
      }, config.drainMs + config.abortGraceMs + STOP_SLACK_MS).unref();
      clearInterval(beat);
      loop.disable();
      await proc.close();
      await watchdog?.stop();
      exit(0);
    })());

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log(`${signal} again: exiting now`);
      exit(signal === 'SIGINT' ? 130 : 143);
    }
    void stop(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('disconnect', () => {
    // The supervisor is gone, and every sibling goes with it: write nothing more (the leases are the
    // safety net: whoever runs next reaps them), stop the tools' own processes, exit.
    quiet = true;
    for (const w of workers) w.abandon();
    // The aborts SIGTERM the tools' processes; what is still there a grace later is killed, found
    // by this worker's tag (nobody else will look for them).
    setTimeout(() => {
      const tag = process.env[WORKER_TAG_ENV];
      const sweep = tag !== undefined ? killWorkerLeftovers(tag) : Promise.resolve([]);
      // Bounded: a worker whose supervisor is gone does not linger on /proc.
      void Promise.race([sweep, new Promise((r) => setTimeout(r, 2000))])
        .catch(() => undefined)
        .finally(() => exit(0));
    }, config.abortGraceMs + 200);
  });
  process.on('message', (m: ToWorker) => {
    if (m.t === 'stop') {
      void stop('asked by the supervisor');
    } else if (m.t === 'notify') {
      relaying = true;
      try {
        if (m.ready) store.publish({ kind: 'ready' });
        for (const runId of m.cancel ?? []) store.publish({ kind: 'cancel', runId });
      } finally {
        relaying = false;
      }
    }
  });

  send({ t: 'ready', pid: process.pid, workerIds: workers.map((w) => w.id) });
}

const initTimer = setTimeout(() => {
  log(`no init order from a supervisor within ${INIT_TIMEOUT_MS} ms: this entry point is started by \`runwarden start\` or \`runwarden worker\``);
  exit(2);
}, INIT_TIMEOUT_MS);

process.once('message', (m: ToWorker) => {
  clearTimeout(initTimer);
  if (m.t !== 'init') {
    log(`expected an init order, got ${m.t}`);
    exit(2);
  }
  main(m).catch((err: unknown) => {
    log(`worker process failed: ${(err as Error).stack ?? String(err)}`);
    exit(1);
  });
});
