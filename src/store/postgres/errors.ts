/**
 * What a PostgreSQL failure means to the engine: the database is unreachable (retry later, 503), a
 * transaction lost a race the database resolved for us (retry the transaction at once), or a plain
 * error (a bug or bad data: rethrow).
 */
import { RunwardenError } from '../../domain/errors.ts';

interface PgLikeError {
  code?: unknown;
  message?: unknown;
  constraint?: unknown;
}

/** Socket-level errno codes that mean "the server is not there (right now)". */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);

/**
 * SQLSTATEs of a lost or refused connection: class 08 (connection exception), 57P01-57P03
 * (terminated by an administrator, crash shutdown, "the database system is starting up / shutting
 * down") and 53300 (too many connections).
 */
const SERVER_GONE = new Set(['57P01', '57P02', '57P03', '53300']);

/** Messages node-postgres uses for connections it lost or could not make. */
const CLIENT_GONE = [
  'Connection terminated',
  'not queryable',
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'connection timeout',
  'Client was closed',
];

export function isConnectionError(err: unknown): boolean {
  if (err instanceof RunwardenError) return err.code === 'DATABASE_UNAVAILABLE';
  if (typeof err !== 'object' || err === null) return false;
  const e = err as PgLikeError;
  const code = typeof e.code === 'string' ? e.code : '';
  if (SOCKET_CODES.has(code) || SERVER_GONE.has(code) || code.startsWith('08')) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return CLIENT_GONE.some((m) => message.includes(m));
}

/**
 * Errors after which the whole transaction may simply run again: a deadlock the server broke
 * (40P01), a serialization failure (40001), a lock timeout (55P03), and the unique violation two
 * concurrent submissions with one idempotency key produce (the retry finds the committed run).
 */
export function isConflict(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as PgLikeError;
  if (e.code === '40P01' || e.code === '40001' || e.code === '55P03') return true;
  return e.code === '23505' && e.constraint === 'runs_idempotency_key';
}

export function unavailable(err: unknown, location: string): RunwardenError {
  if (err instanceof RunwardenError && err.code === 'DATABASE_UNAVAILABLE') return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new RunwardenError('DATABASE_UNAVAILABLE', `PostgreSQL at ${location} is unavailable: ${detail}`, { cause: err,
  });
}

/** Connection failures become DATABASE_UNAVAILABLE, a full disk (SQLSTATE 53100) STORAGE_FULL; everything else is returned as it is. */
export function mapError(err: unknown, location: string): unknown {
  if ((err as { code?: unknown } | null)?.code === '53100') {
    return new RunwardenError('STORAGE_FULL', `disk full: PostgreSQL at ${location} cannot write (${(err as Error).message})`, { cause: err });
  }
  return isConnectionError(err) ? unavailable(err, location) : err;
}
