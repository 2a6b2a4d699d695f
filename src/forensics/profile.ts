/**
 * Where a busy thread spends its time, from a short V8 CPU profile (`worker.startCpuProfile()`,
 * which interrupts even a thread spinning in a synchronous loop): the stack of the most-sampled
 * function, innermost first, as V8 stack lines a report can parse.
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
}

/** V8 bookkeeping nodes, not code. */
const SYNTHETIC = new Set(['(root)', '(program)', '(idle)', '(garbage collector)']);

/**
 * Stack lines (`    at fn (url:line:col)`) of the hottest sampled function; empty when nothing ran.
 * `prefer`: when some sampled functions pass it (user code), the hottest of those wins.
 */
export function hottestStack(profile: CpuProfile, max = 30, prefer?: (url: string) => boolean): string[] {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const hottest = (ok: (n: ProfileNode) => boolean): ProfileNode | undefined => {
    let hot: ProfileNode | undefined;
    for (const n of profile.nodes) {
      if (SYNTHETIC.has(n.callFrame.functionName) || (n.hitCount ?? 0) === 0 || !ok(n)) continue;
      if (!hot || (n.hitCount ?? 0) > (hot.hitCount ?? 0)) hot = n;
    }
    return hot;
  };
  const hot = (prefer ? hottest((n) => prefer(n.callFrame.url)) : undefined) ?? hottest(() => true);
  const lines: string[] = [];
  for (let n = hot; n && lines.length < max; n = byId.get(parent.get(n.id) ?? -1)) {
    const f = n.callFrame;
    if (SYNTHETIC.has(f.functionName)) break;
    const where = f.url ? `${f.url}:${f.lineNumber + 1}:${f.columnNumber + 1}` : 'native';
    lines.push(`    at ${f.functionName || '<anonymous>'} (${where})`);
  }
  return lines;
}
