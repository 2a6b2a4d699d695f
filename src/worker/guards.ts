/**
 * Process-wide nets for errors nobody awaited. A stray rejection or throw from tool code is
 * recorded as an event on the step whose async context produced it (Node 24 runs these handlers in
 * that context) and the process carries on: one careless tool must not take down a worker and
 * every other step on it. Errors outside any step are logged.
 */
import { installRedaction, redactText } from '../forensics/redact.ts';
import { currentStep } from './context.ts';

let installed = false;
let sink: (line: string) => void = (line) => process.stderr.write(`${line}\n`);

function describe(reason: unknown): { message: string; name: string } {
  if (reason instanceof Error) return { message: reason.message, name: reason.name };
  return { message: typeof reason === 'string' ? reason : JSON.stringify(reason) ?? String(reason), name: typeof reason };
}

export function installProcessGuards(log?: (line: string) => void): void {
  if (log) sink = log;
  if (installed) return;
  installed = true;
  installRedaction();
  const handle = (kind: 'unhandled_rejection' | 'uncaught_exception', reason: unknown): void => {
    const step = currentStep();
    const { message, name } = describe(reason);
    if (step) {
      // record() redacts.
      step.record('step.log', { level: 'error', kind, message: `${kind.replace('_', ' ')}: ${name}: ${message}` });
    } else {
      sink(redactText(`runwarden: ${kind.replace('_', ' ')} outside any step: ${name}: ${message}`));
    }
  };
  process.on('unhandledRejection', (reason) => handle('unhandled_rejection', reason));
  process.on('uncaughtException', (err) => handle('uncaught_exception', err));
}
