/**
 * A thread that `terminate()` cannot stop because it sits in a system call: some of those calls can
 * be made to return from outside. Today one: opening a FIFO that has no peer (`readFileSync` of a
 * named pipe nobody writes to waits in `open` forever). Opening the other end, then closing it, lets
 * the open complete; the read that follows sees end-of-file and the thread goes back to JavaScript,
 * where its termination takes effect. A thread waiting on a child process (`execSync`) is released
 * by killing the child, which containment does anyway.
 */
import { closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import type { TaskFacts } from '../../forensics/procfs.ts';

/** The NUL-terminated string at `address` in this process's memory, or null. */
function readCString(address: bigint): string | null {
  let fd: number | undefined;
  try {
    fd = openSync('/proc/self/mem', 'r');
    const buf = Buffer.alloc(4096);
    const n = readSync(fd, buf, 0, buf.length, address);
    const end = buf.indexOf(0);
    if (end <= 0 || end > n) return null;
    return buf.subarray(0, end).toString('utf8');
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Tries to make a blocked thread's system call return; says what it did, or null. */
export function releaseBlockedThread(facts: TaskFacts): string | null {
  const call = facts.syscall;
  if (!call || (call.name !== 'openat' && call.name !== 'open')) return null;
  // openat(dirfd, pathname, flags, ...) / open(pathname, flags, ...)
  const [pathArg, flagsArg] = call.name === 'openat' ? [call.args[1], call.args[2]] : [call.args[0], call.args[1]];
  if (pathArg === undefined || flagsArg === undefined) return null;
  const path = readCString(BigInt(pathArg));
  if (path === null) return null;
  try {
    if (!statSync(path).isFIFO()) return null;
  } catch {
    return null;
  }
  // The thread opens for reading (O_RDONLY is 0): be its writer, and the other way round.
  const wantsRead = (Number.parseInt(flagsArg, 16) & 3) === constants.O_RDONLY;
  try {
    const fd = openSync(path, (wantsRead ? constants.O_WRONLY : constants.O_RDONLY) | constants.O_NONBLOCK);
    closeSync(fd);
  } catch {
    return null;
  }
  return `opened the other end of FIFO ${path} so that its open returned`;
}
