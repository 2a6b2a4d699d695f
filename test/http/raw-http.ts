/**
 * HTTP/1.1 written byte for byte on a TCP socket: fetch and node:http refuse the requests the
 * hardening tests need to send (an `Expect` they do not know, NUL in a path, raw invalid UTF-8,
 * a header without a value). One request per connection (`connection: close`), so the response
 * ends when the server closes the socket.
 */
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RawRequest {
  method: string;
  /** The request target exactly as sent (already percent-encoded, or deliberately not). */
  target: string;
  headers?: Array<[string, string]>;
  body?: Buffer | string;
  /** Send the body with `transfer-encoding: chunked` (in two chunks) instead of a content-length. */
  chunked?: boolean;
}

export function encodeRequest(r: RawRequest): Buffer {
  const body = r.body === undefined ? undefined : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body, 'utf8');
  const lines = [`${r.method} ${r.target} HTTP/1.1`, 'host: 127.0.0.1', 'connection: close'];
  for (const [k, v] of r.headers ?? []) lines.push(`${k}: ${v}`);
  let payload: Buffer = Buffer.alloc(0);
  if (body !== undefined) {
    if (r.chunked) {
      lines.push('transfer-encoding: chunked');
      const half = Math.floor(body.length / 2);
      const parts = [body.subarray(0, half), body.subarray(half)].filter((p) => p.length > 0);
      payload = Buffer.concat([...parts.flatMap((p) => [Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]), Buffer.from('0\r\n\r\n')]);
    } else {
      lines.push(`content-length: ${body.length}`);
      payload = body;
    }
  }
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), payload]);
}

/** Sends `request` to 127.0.0.1:port and resolves with the final (non-1xx) response. */
export function rawHttp(port: number, request: RawRequest | Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  const bytes = Buffer.isBuffer(request) ? request : encodeRequest(request);
  const isHead = !Buffer.isBuffer(request) && request.method === 'HEAD';
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (d: Buffer) => chunks.push(d));
    // The server may close while the request is still being written (a 413 or 417 refuses the rest).
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') {
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parseResponse(Buffer.concat(chunks), isHead));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

function parseResponse(buf: Buffer, isHead: boolean): RawResponse {
  let rest = buf;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) throw new Error(`the server closed the connection without a complete response (${buf.length} bytes: ${JSON.stringify(buf.subarray(0, 200).toString('latin1'))})`);
    const head = rest.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1]);
    if (!Number.isInteger(status)) throw new Error(`not an HTTP status line: ${JSON.stringify(head[0])}`);
    const headers: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    rest = rest.subarray(end + 4);
    if (status >= 100 && status < 200) continue;
    let body = isHead ? Buffer.alloc(0) : rest;
    if (!isHead && headers['transfer-encoding']?.toLowerCase() === 'chunked') body = dechunk(rest);
    else if (!isHead && headers['content-length'] !== undefined) body = rest.subarray(0, Number(headers['content-length']));
    return { status, headers, body: body.toString('utf8') };
  }
}

function dechunk(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < buf.length) {
    const eol = buf.indexOf('\r\n', at);
    if (eol === -1) break;
    const size = Number.parseInt(buf.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
