/**
 * The URL of one of runwarden's own modules that is started by path rather than imported (a worker
 * process entry, a worker thread). From the source tree the files are `.ts` (Node strips the
 * types); from the built package they are `.js` beside the caller. The compiler rewrites import
 * specifiers but not strings passed to `new URL()`, so the extension is taken from the caller.
 */
export function ownModuleUrl(callerUrl: string, relative: string): URL {
  const ext = callerUrl.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`${relative}${ext}`, callerUrl);
}
