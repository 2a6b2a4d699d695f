/**
 * Every error code the HTTP API answers with, and its status: the table of docs/api.md "Errors"
 * (test/http/error-codes.test.ts keeps the two equal). The HTTP layer raises most of them itself
 * (src/http/errors.ts); the engine raises PLAN_INVALID, INVALID_CURSOR and the stores
 * DATABASE_UNAVAILABLE. The TypeScript client types `RunwardenApiError.code` with these.
 */
export const API_ERROR_STATUS = {
  INVALID_JSON: 400,
  BODY_TOO_DEEP: 400,
  EMPTY_BODY: 400,
  INVALID_BODY: 400,
  PLAN_INVALID: 400,
  INVALID_QUERY: 400,
  INVALID_CURSOR: 400,
  INVALID_CONTENT_LENGTH: 400,
  BAD_URL: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  REQUEST_TIMEOUT: 408,
  EXPECTATION_FAILED: 417,
  BODY_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  HEADERS_TOO_LARGE: 431,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DATABASE_UNAVAILABLE: 503,
} as const;

export type ApiErrorCode = keyof typeof API_ERROR_STATUS;
