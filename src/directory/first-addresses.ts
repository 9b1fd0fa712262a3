/**
 * The first N mailbox addresses of a directory in one stable order: `coexist trace --all` over a directory
 * traces a sample, and the same directory must always give the same sample (docs/config.md "directory").
 * The order is the primary SMTP address compared case-insensitively (then as written, so two spellings of
 * one address keep an order too). Only N addresses are held while any number stream past.
 */

/** Case-insensitive address order, ties broken by the exact text. */
export function compareAddresses(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (x !== y) return x < y ? -1 : 1;
  return a === b ? 0 : a < b ? -1 : 1;
}

/** The `limit` first addresses seen so far in `compareAddresses` order, and how many were seen. */
export class FirstAddresses {
  readonly #limit: number;
  readonly #kept: string[] = [];
  #seen = 0;

  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 0)
      throw new RangeError(`limit must be 0 or more, not ${limit}`);
    this.#limit = limit;
  }

  add(address: string): void {
    this.#seen++;
    const kept = this.#kept;
    if (
      kept.length === this.#limit &&
      (kept.length === 0 || compareAddresses(address, kept.at(-1) as string) >= 0)
    )
      return;
    // Binary search for the first kept address after this one.
    let lo = 0;
    let hi = kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareAddresses(kept[mid] as string, address) <= 0) lo = mid + 1;
      else hi = mid;
    }
    kept.splice(lo, 0, address);
    if (kept.length > this.#limit) kept.pop();
  }

  /** How many addresses were added. */
  get seen(): number {
    return this.#seen;
  }

  /** The kept addresses, first first. */
  values(): string[] {
    return [...this.#kept];
  }
}
