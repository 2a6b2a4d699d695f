/** `runwarden lab`: the hang lab on its own, to point any client at a failure mode. */
import type { ModeInfo } from '../../lab/types.ts';
import { intFlag, stringFlag } from '../command.ts';
import type { Command } from '../command.ts';
import { table, truncate } from '../format.ts';
import type { Io } from '../io.ts';
import { handleShutdownSignals } from '../signals.ts';

export const labCommand: Command = {
  name: 'lab',
  summary: 'Start the hang lab: an OpenAI/Anthropic-compatible server that fails on demand, one failure mode per base URL.',
  usage: '[--port 7401] [--host 127.0.0.1] [--latency-ms n]',
  help: `  --port n        port (default 7401; 0 picks a free port)
  --host h        loopback address to listen on (default 127.0.0.1; the lab never leaves this host)
  --latency-ms n  delay before the first byte of every response (default 0)

Prints "runwarden lab listening on <url>" and the modes from GET <url>/modes. Stop with Ctrl-C.`,
  options: { port: { type: 'string' }, host: { type: 'string' }, 'latency-ms': { type: 'string' } },
  positionals: { min: 0, max: 0 },
  async run(args, io) {
    const port = intFlag(args, 'port', 0, 65_535) ?? 7401;
    const latencyMs = intFlag(args, 'latency-ms', 0, 3_600_000) ?? 0;
    const host = stringFlag(args, 'host') ?? '127.0.0.1';
    const shutdown = handleShutdownSignals(io, 'the lab');
    let lab: Awaited<ReturnType<typeof import('../../lab/index.ts').startLab>>;
    try {
      const { startLab } = await import('../../lab/index.ts');
      lab = await startLab({ host, port, latencyMs, log: (line) => io.err(`${line}\n`) });
    } catch (err) {
      shutdown.dispose();
      throw err;
    }
    io.out(`runwarden lab listening on ${lab.url}\n`);
    const modes = await fetchModes(lab.url, io);
    io.out(`${table(['MODE', 'BASE URL', 'WHAT IT DOES'], (modes ?? lab.modes()).map((m) => [m.name, m.baseUrl, truncate(m.description, 70)])).join('\n')}\n`);
    io.out(`every mode with its parameters: GET ${lab.url}/modes\n`);
    shutdown.started(() => lab.close());
    return shutdown.done;
  },
};

async function fetchModes(url: string, io: Io): Promise<ModeInfo[] | undefined> {
  try {
    const res = await fetch(`${url}/modes`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { modes?: ModeInfo[] };
    if (Array.isArray(body.modes)) return body.modes;
    io.err(`GET ${url}/modes answered without a modes list; showing the built-in catalog\n`);
  } catch (err) {
    io.err(`GET ${url}/modes failed (${err instanceof Error ? err.message : String(err)}); showing the built-in catalog\n`);
  }
  return undefined;
}
