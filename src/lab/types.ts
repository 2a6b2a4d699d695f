/**
 * Public types of the hang lab. Kept apart from `server.ts` so that callers (CLI, `start`, tests)
 * can import the shapes without pulling in the server.
 */

export interface LabOptions {
  /** Interface to listen on. Must be a loopback address: the lab never listens beyond this host. @default '127.0.0.1' */
  host?: string;
  /** HTTP port. 0 picks an ephemeral port. @default 7401 */
  port?: number;
  /** Delay before the first response byte when a request does not set `latency_ms`. @default 0 */
  latencyMs?: number;
  /** Port of the `connect_blackhole` listener. 0 picks an ephemeral port. @default 0 */
  blackholePort?: number;
  /** UDP port of the silent DNS server used by `slow_dns`. 0 picks an ephemeral port. @default 0 */
  dnsPort?: number;
  /** Receives one line per request and per notable lab event. @default no logging */
  log?: (line: string) => void;
}

export interface Lab {
  /** `http://127.0.0.1:PORT`, without a trailing slash. */
  url: string;
  port: number;
  /** Destroys every held socket and stops all helpers; resolves quickly even while modes hold sockets. */
  close(): Promise<void>;
  modes(): ModeInfo[];
}

export interface ModeInfo {
  name: string;
  description: string;
  /** Base URL for OpenAI-style clients (ends in `/v1`). */
  baseUrl: string;
  /** Tunable parameter -> meaning (with its default). */
  params: Record<string, string>;
  /** Base URL for the Anthropic SDK, which appends `/v1/messages` itself. Absent for modes it cannot use. */
  anthropicBaseUrl?: string;
  /** Extra instructions when the base URL alone is not enough (connect- and DNS-level modes). */
  howTo?: string;
}
