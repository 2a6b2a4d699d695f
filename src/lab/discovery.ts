/**
 * How `runwarden doctor` finds the lab a `runwarden start` (`npm start`) is running: the runtime
 * writes `lab.json` (url, pid) into its data directory while the lab is up, since the lab may sit on
 * a free port when the configured one was busy. Without that file, the configured lab port is asked
 * whether a runwarden lab answers there (`runwarden lab` on its own).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LAB_FILE = 'lab.json';

export function writeLabFile(dataDir: string, url: string): void {
  writeFileSync(join(dataDir, LAB_FILE), `${JSON.stringify({ url, pid: process.pid })}\n`);
}

export function removeLabFile(dataDir: string): void {
  rmSync(join(dataDir, LAB_FILE), { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The lab recorded in `dataDir` if its process is alive, else one answering on `port`, else undefined. */
export async function findRunningLab(dataDir: string, port: number, timeoutMs: number): Promise<{ url: string; how: string } | undefined> {
  try {
    const rec = JSON.parse(readFileSync(join(dataDir, LAB_FILE), 'utf8')) as { url?: unknown; pid?: unknown };
    if (typeof rec.url === 'string' && typeof rec.pid === 'number' && alive(rec.pid)) return { url: rec.url, how: `started by runwarden (pid ${rec.pid})` };
  } catch {
    // No file (no lab started here, or it stopped): try the port.
  }
  if (port === 0) return undefined;
  const url = `http://127.0.0.1:${port}`;
  try {
    const res = await fetch(`${url}/modes`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as { lab?: unknown };
    if (body.lab === 'runwarden hang lab') return { url, how: `answering on port ${port}` };
  } catch {
    // Nothing there, or not a lab.
  }
  return undefined;
}
