/**
 * Group commit: concurrent calls that each want one small write share a transaction. The first
 * call runs at once, alone (no added latency when calls come one at a time); calls that arrive while
 * a transaction is in flight wait for it and then go together in the next one, up to `maxItems`
 * (or `maxWeight`, summed over the items) per transaction. One commit then pays for many: on SQLite
 * the BEGIN/COMMIT and the turn of the loop each transaction takes, on PostgreSQL the round trips,
 * the commit's WAL flush and the run-row locks.
 *
 * A group whose transaction fails is tried again one item at a time, so each caller gets its own
 * result or error (an item that fails alone does not fail the others).
 */
export interface GroupCommitOptions<I, R> {
  /** Writes a group in one transaction; returns one result per item, in order. */
  write: (items: I[]) => Promise<R[]>;
  /** @default 500 */
  maxItems?: number;
  /** The weight of an item (e.g. its steps); a group stops before its weight passes `maxWeight`. @default 1 each */
  weight?: (item: I) => number;
  /** @default Infinity */
  maxWeight?: number;
}

interface Waiting<I, R> {
  item: I;
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<I, R> {
  readonly #o: Required<GroupCommitOptions<I, R>>;
  #waiting: Array<Waiting<I, R>> = [];
  #busy = false;
  /** Transactions written and items they held (for tests and metrics). */
  readonly stats = { groups: 0, items: 0 };

  constructor(o: GroupCommitOptions<I, R>) {
    this.#o = { maxItems: 500, weight: () => 1, maxWeight: Number.POSITIVE_INFINITY, ...o };
  }

  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (!this.#busy) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#busy = true;
    try {
      while (this.#waiting.length > 0) {
        const group = this.#take();
        this.stats.groups++;
        this.stats.items += group.length;
        await this.#write(group);
      }
    } finally {
      this.#busy = false;
    }
  }

  #take(): Array<Waiting<I, R>> {
    let n = 0;
    let weight = 0;
    while (n < this.#waiting.length && n < this.#o.maxItems) {
      const w = this.#o.weight((this.#waiting[n] as Waiting<I, R>).item);
      // A heavy item still goes, alone.
      if (n > 0 && weight + w > this.#o.maxWeight) break;
      weight += w;
      n++;
    }
    return this.#waiting.splice(0, n);
  }

  /** Settles every caller of the group; never rejects. */
  async #write(group: Array<Waiting<I, R>>): Promise<void> {
    try {
      const results = await this.#o.write(group.map((g) => g.item));
      group.forEach((g, i) => g.resolve(results[i] as R));
      return;
    } catch (err) {
      if (group.length === 1) {
        (group[0] as Waiting<I, R>).reject(err);
        return;
      }
    }
    for (const g of group) {
      try {
        const [r] = await this.#o.write([g.item]);
        g.resolve(r as R);
      } catch (err) {
        g.reject(err);
      }
    }
  }
}
