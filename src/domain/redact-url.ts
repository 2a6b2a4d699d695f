/**
 * The one way a URL is shown anywhere (logs, errors, events, hang reports, health, the CLI):
 * credentials become `[redacted]@`, the value of every query parameter whose name looks secret
 * becomes `[redacted]` (other parameters, such as `pool_max=4` or `api-version=...`, stay: they say
 * how the URL is used), and the fragment is dropped. An unparseable string that could hold
 * credentials or a query is shown as `[unparseable URL]`. Values that are secret under an
 * innocent name are caught by the process-wide redaction of registered secrets (forensics/redact.ts),
 * which every error message, event and report also passes through.
 */
export const REDACTED = '[redacted]';

const SECRET_PARAM = /pass|token|secret|key|sig|auth|cred|session|code|jwt/i;

export function redactUrl(raw: string | URL): string {
  let url: URL;
  try {
    url = new URL(String(raw));
  } catch {
    const text = String(raw);
    return /[@?#]/.test(text) ? '[unparseable URL]' : text;
  }
  const auth = url.username !== '' || url.password !== '' ? `${REDACTED}@` : '';
  const params: string[] = [];
  for (const [name, value] of url.searchParams) {
    params.push(`${encodeURIComponent(name)}=${SECRET_PARAM.test(name) ? REDACTED : encodeURIComponent(value)}`);
  }
  const search = params.length > 0 ? `?${params.join('&')}` : '';
  const authority = url.host === '' && auth === '' ? '' : `//${auth}${url.host}`;
  return `${url.protocol}${authority}${url.pathname}${search}`;
}
