/**
 * The lab's request log (`GET /requests`): what it was asked, newest last, so a test can assert from
 * the lab's side which turns of a conversation were requested and how often (an agent resumed
 * after a crash must not ask for a finished turn again). Bounded: the last 1,000 requests.
 */
import type { Conversation } from './conversation.ts';
import type { Endpoint } from './params.ts';
import type { Format } from './wire.ts';

const KEEP = 1000;

export interface LabRequest {
  /** 1, 2, ...: numbers every request the lab has logged since it started. */
  seq: number;
  /** ISO time the request (and its body) arrived. */
  at: string;
  method: string;
  /** The path without the query string (the mode segment and its matrix parameters included). */
  path: string;
  mode: string;
  endpoint: Endpoint;
  format: Format;
  stream: boolean;
  /** Chat and messages requests: which turn of the conversation (see conversation.ts). */
  turn?: number;
  tools?: string[];
  toolResults?: number;
}

export class RequestLog {
  readonly #entries: LabRequest[] = [];
  #seq = 0;

  add(entry: Omit<LabRequest, 'seq' | 'at'>, conversation?: Conversation): void {
    this.#seq += 1;
    const e: LabRequest = { seq: this.#seq, at: new Date().toISOString(), ...entry };
    if (conversation) {
      e.turn = conversation.turn;
      e.tools = conversation.tools;
      e.toolResults = conversation.toolResults;
    }
    this.#entries.push(e);
    if (this.#entries.length > KEEP) this.#entries.splice(0, this.#entries.length - KEEP);
  }

  /** Entries with a seq above `since`, oldest first; `dropped` counts those no longer kept. */
  since(since: number): { requests: LabRequest[]; dropped: number; last: number } {
    const first = this.#entries[0]?.seq ?? this.#seq + 1;
    return { requests: this.#entries.filter((e) => e.seq > since), dropped: Math.max(0, first - 1 - since), last: this.#seq };
  }
}
