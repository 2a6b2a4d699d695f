/**
 * A hang report as readers receive it (API, `step.hang_report` events, the TypeScript client): the
 * data written by src/forensics/report.ts. Declared here, without the forensics internals, so that
 * the public types need nothing from Node; test/types/public.ts checks that what the forensics
 * builder returns is assignable to it. docs/forensics.md explains every field and code.
 */
export interface HangClassification {
  /** Stable code: `net.connect_timeout`, `llm.no_headers`, `llm.stream_idle`, `loop.blocked`, `worker.crashed`, ... */
  code: string;
  summary: string;
}

export interface HangSourceLocation {
  file: string;
  line: number;
  column: number;
  fn?: string;
}

/** One operation the step had pending when it was stopped. */
export interface HangPendingOp {
  id: number;
  kind: 'http' | 'socket' | 'child' | 'thread' | 'lock' | 'tracked';
  what: string;
  phase: string;
  msInPhase: number;
  ageMs: number;
  client?: 'fetch' | 'node:http';
  method?: string;
  /** Redacted: no credentials, no query string. */
  url?: string;
  peer?: string;
  status?: number;
  command?: string;
  pid?: number;
  bytesIn?: number;
  bytesOut?: number;
  /** null: no byte was ever received. */
  msSinceLastByte?: number | null;
  label?: string;
  holder?: string;
  /** Set on child processes the engine signalled (and threads it terminated). */
  killed?: string;
  /** Worker threads: the thread id. */
  threadId?: number;
  /** The first user-code frame of the call that started it. */
  frame?: string;
  /** Still pending when the attempt was abandoned: the abort did not stop it. */
  outlivedAbort?: boolean;
}

/** What containment stopped when an attempt ended. */
export interface HangContainment {
  mode: 'thread' | 'inline';
  processes: Array<{ pid: number; command: string; signal: string }>;
  threads: Array<{ threadId: number; what: string }>;
  socketsClosed: number;
  toolThread?: { terminated: boolean; ms: number; blockedIn?: string; released?: string };
  notStopped: string[];
}

export interface HangReport {
  version: 1;
  classification: HangClassification;
  /** Why it was written. */
  trigger: 'deadline' | 'queue_timeout' | 'limit' | 'cancel' | 'shutdown' | 'lease_lost' | 'lost' | 'stall';
  runId: string;
  stepName: string;
  tool: string;
  attempt: number;
  /** Where the step was stuck: the user-code line of the blocking operation, checkpoint or tool. */
  where: (HangSourceLocation & { source: string }) | null;
  toolLocation: HangSourceLocation | null;
  timeoutMs: number;
  ranMs: number;
  ignoredAbort: boolean;
  /** User-code frames, innermost first. */
  frames: string[];
  pending: HangPendingOp[];
  /** Its timers still set, and its queued setImmediate callbacks (`kind: 'immediate'`). */
  timers?: Array<{ kind: 'timeout' | 'immediate'; delayMs: number; repeat: boolean; callback?: string }>;
  /** What the tool did after its signal aborted. */
  afterAbort?: string[];
  /** Tool threads: CPU and writes of the tool's thread between its abort and its cut (/proc). */
  afterAbortUsage?: { windowMs: number; cpuMs: number; writeCalls: number; bytesWritten: number };
  /** What was stopped when the attempt ended (docs/lifecycle.md, containment). */
  containment?: HangContainment;
  /** Tool threads: the thread as /proc showed it at the cut. */
  thread?: { tid: number; state: string; cpuMs: number; syscall?: string; fd?: string; wchan?: string };
  lastCheckpoint: { label: string; msBeforeReport: number; frame?: string } | null;
  eventLoop: { maxDelayMs: number; p99DelayMs: number; meanDelayMs: number; utilization: number; seconds: number } | null;
  resources: {
    pid: number;
    uptimeS: number;
    rssBytes: number;
    heapUsedBytes: number;
    heapTotalBytes: number;
    heapLimitBytes: number;
    externalBytes: number;
    /** Handles and requests keeping the loop alive, by type (TCPSocketWrap, Timeout, FSReqCallback ...). */
    activeResources: Record<string, number>;
    /** Open file descriptors (Linux: /proc/self/fd); null where unknown. */
    openFds: number | null;
    cpuUserMs: number;
    cpuSystemMs: number;
    loadAvg1m: number;
  };
  /** The configuration of the process that wrote it, redacted. */
  config: Record<string, unknown>;
  lastLogs: string[];
  /** What the tool's own error said about the operation (LLM phase, provider, bytes ...). */
  operation?: Record<string, unknown>;
  /** What this report could not know. */
  notes: string[];
  /** Writers add facts of their own (`worker`, `containment`, ...). */
  [key: string]: unknown;
}

/**
 * What a `wait` step whose signal did not come in time is known by: the engine's reaper finds it,
 * forensics turns it into its hang report (waitTimeoutReport).
 */
export interface WaitTimeoutFacts {
  runId: string;
  stepName: string;
  attempt: number;
  signal: string;
  /** Epoch ms: when the step began to wait, the end of its wait, and now. */
  since: number;
  deadlineAt: number;
  now: number;
}

/** What a queued step past its queueTimeoutMs is known by, for its report (the reaper's; forensics builds it). */
export interface QueueTimeoutFacts {
  runId: string;
  stepName: string;
  tool: string;
  /** The attempt it was waiting to start. */
  attempt: number;
  queueTimeoutMs: number;
  /** Epoch ms it became ready, and now. */
  since: number;
  now: number;
  /** Its concurrency key and how full it was, if it had one. */
  concurrency: { key: string; limit: number; running: number } | null;
  /** What held it, in a sentence (the step's error says the same). */
  summary: string;
}
