/**
 * The error codes the HTTP API answers with, and their statuses: the `api: true` rows of
 * error-codes.ts (docs/api.md "Errors" lists the same; test/unit/error-codes.test.ts keeps the two equal). The TypeScript
 * client types `RunwardenApiError.code` with these.
 */
import { ERROR_CODES } from './error-codes.ts';

type Table = typeof ERROR_CODES;
export type ApiErrorCode = { [K in keyof Table]: Table[K] extends { api: true } ? K : never }[keyof Table];

export const API_ERROR_STATUS = Object.freeze(
  Object.fromEntries(Object.entries(ERROR_CODES).flatMap(([code, s]) => ('api' in s ? [[code, s.status]] : []))),
) as { readonly [K in ApiErrorCode]: Table[K]['status'] };
