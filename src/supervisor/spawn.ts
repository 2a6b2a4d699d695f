/**
 * One worker process and its plumbing: spawned with the report pipe and the IPC channel, its stdout
 * and stderr split into lines, its report pipe into parsed reports, and its exit delivered once the
 * rest of its output has been read (briefly: a grandchild that inherited a pipe may keep it open
 * forever).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { LineSplitter, parseReport, WORKER_STDIO, type FromWorker, type InitMessage, type PipeReport } from './protocol.ts';

/** After a worker exits, how long to wait for the rest of its output before acting on the exit. */
const OUTPUT_DRAIN_MS = 200;

export interface WorkerProcessHandlers {
  onLine(line: string): void;
  onReport(r: PipeReport): void;
  onMessage(m: FromWorker): void;
  /** Called once, after the remaining output was read; what it returns is awaited by `gone`. */
  onExit(code: number | null, signal: NodeJS.Signals | null): Promise<void>;
  onError(err: Error): void;
}

export interface SpawnedWorker {
  child: ChildProcess;
  /** Resolves when the process is gone and `onExit` has finished. */
  gone: Promise<void>;
}

export function spawnWorkerProcess(o: { entry: string; args: string[]; env: Record<string, string | undefined>; cwd: string; init: InitMessage }, h: WorkerProcessHandlers): SpawnedWorker {
  const child = spawn(process.execPath, [o.entry, ...o.args], { stdio: [...WORKER_STDIO], env: o.env, cwd: o.cwd });

  const lines = (stream: Readable | null, take: (line: string) => void): Promise<void> => {
    if (!stream) return Promise.resolve();
    const split = new LineSplitter();
    stream.on('data', (d: Buffer) => {
      for (const line of split.push(d)) take(line);
    });
    return new Promise((resolve) =>
      stream.once('close', () => {
        for (const line of split.flush()) take(line);
        resolve();
      }),
    );
  };
  const text = (line: string): void => {
    if (line !== '') h.onLine(line);
  };
  const report = (line: string): void => {
    const r = parseReport(line);
    if (r) h.onReport(r);
  };
  const outputs = [lines(child.stdout, text), lines(child.stderr, text), lines(child.stdio[3] as Readable | null, report)];
  child.on('message', (m: FromWorker) => h.onMessage(m));
  // A failed send or spawn surfaces here; the 'exit' (or the supervisor's start timeout) does the rest.
  child.on('error', (err) => h.onError(err));

  const gone = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      const drained = Promise.all(outputs).then(() => undefined);
      const wait = new Promise<void>((r) => setTimeout(r, OUTPUT_DRAIN_MS).unref());
      Promise.race([drained, wait])
        .then(() => h.onExit(code, signal))
        .catch((err: unknown) => h.onError(err instanceof Error ? err : new Error(String(err))))
        .finally(resolve);
    });
  });
  child.send(o.init, (err: Error | null) => {
    if (err) h.onError(err);
  });
  return { child, gone };
}
