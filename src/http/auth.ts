/**
 * Bearer-token check. The comparison runs on SHA-256 digests with `timingSafeEqual`, so neither the
 * token's content nor its length leaks through response timing. The token is never logged and never
 * echoed: a failed check says only that the token is missing or wrong.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export type TokenCheck = (authorization: string | undefined) => boolean;

export function tokenChecker(token: string): TokenCheck {
  const expected = createHash('sha256').update(token, 'utf8').digest();
  return (authorization) => {
    if (typeof authorization !== 'string') return false;
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    const presented = match?.[1];
    if (presented === undefined) return false;
    const got = createHash('sha256').update(presented, 'utf8').digest();
    return timingSafeEqual(expected, got);
  };
}
