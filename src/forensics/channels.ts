/**
 * Per-step tracking of outgoing I/O through diagnostics_channel, not async_hooks: an async_hooks
 * init hook costs ~2.4x on await-heavy code (FORENSICS.md), a channel subscription costs nothing
 * until a request, socket or child process is created. Each handler asks the step's
 * AsyncLocalStorage which step the code belongs to (Node 24 publishes these events synchronously in
 * the caller's async context) and registers an op there; outside any step it returns at once.
 *
 * Channels (checked on Node 24.21, bundled undici 7.29):
 * - global fetch: `undici:request:create | bodySent | headers | bodyChunkReceived | trailers | error`,
 *   `undici:client:sendHeaders` (the only event that links a request to its socket) and
 *   `undici:client:beforeConnect` (the next socket is undici's);
 * - node:http: `http.client.request.created` and `http.client.response.finish` (published when the
 *   response *headers* are parsed, despite the name);
 * - `net.client.socket` (every `socket.connect()`, including the ones HTTP clients make);
 * - `child_process` (published in the ChildProcess constructor).
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import type { ChildProcess } from 'node:child_process';
import dc from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { loopMonitor } from './loop.ts';
import { FetchOp, HttpOp, SocketOp, type UndiciRequest } from './net-ops.ts';
import { ChildOp, clearMarksSoon, marks, noteCapture, recentCapture } from './ops.ts';
import type { StepForensics } from './step.ts';

export interface ForensicsHost<S> {
  storage: AsyncLocalStorage<S>;
  select(store: S): StepForensics | undefined;
}

let host: ForensicsHost<unknown> | undefined;
let enabled = false;
let chosen = false;

/** The forensics of the step whose async context is current, if any. */
export function currentForensics(): StepForensics | undefined {
  const h = host;
  if (!h) return undefined;
  const store = h.storage.getStore();
  return store === undefined ? undefined : h.select(store);
}

/** The step an AsyncContextFrame (a Map keyed by AsyncLocalStorage) belongs to; for the timer scan. */
export function forensicsOfFrame(frame: unknown): StepForensics | undefined {
  const h = host;
  // Node's AsyncContextFrame is a Map built from internal primordials: not `instanceof Map` here.
  if (!h || frame === null || typeof frame !== 'object' || Object.prototype.toString.call(frame) !== '[object Map]') return undefined;
  const store: unknown = Map.prototype.get.call(frame, h.storage);
  return store === undefined ? undefined : h.select(store);
}

const httpOps = new WeakMap<ClientRequest, HttpOp>();
const fetchOps = new WeakMap<object, FetchOp>();

const handlers: Record<string, (message: unknown) => void> = {
  'http.client.request.created': (m) => {
    const fx = currentForensics();
    if (!fx) return;
    const req = (m as { request: ClientRequest }).request;
    // A socket the Agent opened for this request a moment ago shares its capture (see ops.ts).
    const prev = recentCapture(fx);
    const op = new HttpOp(fx, req, Date.now(), prev instanceof SocketOp ? prev : undefined);
    noteCapture(op);
    httpOps.set(req, op);
    fx.add(op);
  },
  'http.client.response.finish': (m) => {
    const { request, response } = m as { request: ClientRequest; response: IncomingMessage };
    httpOps.get(request)?.onHeaders(response);
  },
  'undici:request:create': (m) => {
    const fx = currentForensics();
    if (!fx) return;
    const req = (m as { request: UndiciRequest }).request;
    const op = new FetchOp(fx, req, Date.now());
    noteCapture(op);
    fetchOps.set(req, op);
    fx.add(op);
  },
  'undici:client:beforeConnect': () => {
    marks.undiciConnecting = true;
    clearMarksSoon();
  },
  'undici:client:sendHeaders': (m) => {
    const { request, socket } = m as { request: object; socket: Socket };
    fetchOps.get(request)?.onSocket(socket);
  },
  'undici:request:bodySent': (m) => {
    fetchOps.get((m as { request: object }).request)?.onSent();
  },
  'undici:request:headers': (m) => {
    const { request, response } = m as { request: object; response: { statusCode: number } };
    fetchOps.get(request)?.onHeaders(response.statusCode);
  },
  'undici:request:bodyChunkReceived': (m) => {
    fetchOps.get((m as { request: object }).request)?.onChunk();
  },
  'undici:request:trailers': (m) => {
    fetchOps.get((m as { request: object }).request)?.end();
  },
  'undici:request:error': (m) => {
    fetchOps.get((m as { request: object }).request)?.end();
  },
  'net.client.socket': (m) => {
    const fx = currentForensics();
    if (!fx) return;
    const op = new SocketOp(fx, (m as { socket: Socket }).socket, Date.now(), !marks.undiciConnecting);
    marks.undiciConnecting = false;
    noteCapture(op);
    fx.add(op);
  },
  child_process: (m) => {
    const fx = currentForensics();
    if (!fx) return;
    const op = new ChildOp(fx, (m as { process: ChildProcess }).process, Date.now());
    noteCapture(op);
    fx.add(op);
  },
};

/** Tells forensics where the step scope lives. Called once by the worker. */
export function installForensics<S>(h: ForensicsHost<S>): void {
  host = h;
}

/**
 * Turns tracking on or off process-wide (on by default once the worker starts). Off: no channel
 * subscriptions, no stack captures, no loop monitor; reports still carry the classification the
 * tool's error gives, checkpoints, logs and resources. Used by the overhead benchmark.
 */
export function setForensicsEnabled(on: boolean): void {
  chosen = true;
  if (on === enabled) return;
  enabled = on;
  for (const [name, fn] of Object.entries(handlers)) {
    if (on) dc.subscribe(name, fn);
    else dc.unsubscribe(name, fn);
  }
  if (on) loopMonitor.start();
  else loopMonitor.stop();
}

export function forensicsEnabled(): boolean {
  return enabled;
}

/** Whether tracking is (or, once the first attempt starts, will be) on: what a tool thread should use. */
export function forensicsWanted(): boolean {
  return chosen ? enabled : true;
}

/** On, unless someone chose otherwise: called when the first attempt starts. */
export function enableForensicsByDefault(): void {
  if (!chosen) setForensicsEnabled(true);
}
