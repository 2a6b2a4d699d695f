/**
 * Notices when whatever launched this process is gone. `npx runwarden start` and `npm start` run
 * runwarden under `npm` -> `sh -c` -> node; SIGTERM to the npm process ends npm and the shell but
 * reaches no further (measured: runwarden and its workers lived on, reparented to init), and
 * SIGKILL of npm leaves the shell too. So the long-running commands watch their launcher chain: the
 * parent, and above it every shell up to the first process that is not one. When any of them dies
 * or is reparented, the command stops as if it had received SIGTERM.
 *
 * Only under npm (it sets `npm_command` / `npm_lifecycle_event`), or when asked with
 * RUNWARDEN_EXIT_WITH_PARENT=1: a process started with `nohup runwarden start &` from a shell that
 * then exits must keep running. RUNWARDEN_EXIT_WITH_PARENT=0 turns it off.
 */
import { readFileSync } from 'node:fs';

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ash', 'ksh']);
/** How often the chain is checked: a launcher's death is acted on within this long. */
export const LAUNCHER_POLL_MS = 500;

export function shouldWatchLauncher(env: Record<string, string | undefined>): boolean {
  if (env.RUNWARDEN_EXIT_WITH_PARENT === '0') return false;
  if (env.RUNWARDEN_EXIT_WITH_PARENT === '1') return true;
  return env.npm_command !== undefined || env.npm_lifecycle_event !== undefined;
}

interface Link {
  pid: number;
  ppid: number;
}

/** `/proc/<pid>/stat`: the command name (in parentheses, may hold spaces) and the parent pid. */
function stat(pid: number): { comm: string; ppid: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const ppid = Number(text.slice(close + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? { comm, ppid } : null;
  } catch {
    return null;
  }
}

/** `wrapped`: our parent is bin/runwarden.js re-running us on the pinned Node; look past it too. */
function chain(wrapped: boolean): Link[] {
  const links: Link[] = [{ pid: process.pid, ppid: process.ppid }];
  // Up through the shells between us and the launcher (at most a few: sh -c sh -c ... is rare).
  for (let i = 0; i < 5; i++) {
    const top = links.at(-1) as Link;
    const parent = stat(top.ppid);
    if (!parent || parent.ppid <= 1) break;
    links.push({ pid: top.ppid, ppid: parent.ppid });
    if (!SHELLS.has(parent.comm) && !(wrapped && i === 0)) break;
  }
  return links;
}

/** Calls `onGone` once when a process of the launcher chain is gone; returns a stop function. */
export function watchLauncher(onGone: (pid: number) => void, opts: { wrapped: boolean }): () => void {
  const links = chain(opts.wrapped);
  const timer = setInterval(() => {
    for (const link of links) {
      const ppid = link.pid === process.pid ? process.ppid : stat(link.pid)?.ppid;
      if (ppid !== link.ppid) {
        clearInterval(timer);
        onGone(link.ppid);
        return;
      }
    }
  }, LAUNCHER_POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
