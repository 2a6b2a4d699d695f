/**
 * Prints the text steps stream (`llm.delta` frames) as it arrives, between the event lines of
 * `submit --follow` when the output is not a terminal: every line of a step's text is prefixed with
 * its step name, and an event line never starts in the middle of streamed text.
 *
 *   10:21:04.106 step.started write attempt 1
 *   write │ Once upon a time
 *   write │ there was a run that never hung.
 *   10:21:05.409 step.finished write succeeded 1.3s
 */
import type { TextDelta } from '../domain/records.ts';

export class StreamedTextPrinter {
  readonly #write: (s: string) => void;
  /** The step whose text the current line belongs to; undefined at the start of a line. */
  #open: string | undefined;

  constructor(write: (s: string) => void) {
    this.#write = write;
  }

  delta(d: TextDelta): void {
    const key = `${d.stepName}#${d.attempt}`;
    const prefix = `${d.stepName} │ `;
    if (this.#open !== undefined && this.#open !== key) this.endLine();
    if (d.reset) {
      this.endLine();
      this.#write(`${prefix}(the call was retried: its text starts over)\n`);
    }
    const parts = d.text.split('\n');
    let out = this.#open === undefined ? prefix : '';
    parts.forEach((part, i) => {
      if (i > 0) out += `\n${i === parts.length - 1 && part === '' ? '' : prefix}`;
      out += part;
    });
    this.#write(out);
    // A frame ending in a newline leaves us at the start of a line.
    this.#open = d.text.endsWith('\n') ? undefined : key;
  }

  /** Ends a line of streamed text that is still open, so that what follows starts on its own. */
  endLine(): void {
    if (this.#open === undefined) return;
    this.#write('\n');
    this.#open = undefined;
  }
}
