/**
 * A binary min-heap of (expiresAt, id): the in-flight ledger finds its expired reservations without scanning all of
 * them. Entries are never removed from the middle; a retired reservation's entry stays until it reaches the top and is
 * skipped there (the ledger checks the id is still live with that expiry), so every operation is O(log n).
 */
export class ExpiryHeap {
  private readonly at: number[] = [];
  private readonly ids: string[] = [];

  get size(): number {
    return this.at.length;
  }

  push(expiresAt: number, id: string): void {
    let i = this.at.length;
    this.at.push(expiresAt);
    this.ids.push(id);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.at[parent] <= expiresAt) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Expiry of the earliest entry (Infinity when empty). */
  peek(): number {
    return this.at.length > 0 ? this.at[0] : Infinity;
  }

  pop(): { expiresAt: number; id: string } | undefined {
    const n = this.at.length;
    if (n === 0) return undefined;
    const top = { expiresAt: this.at[0], id: this.ids[0] };
    this.swap(0, n - 1);
    this.at.pop();
    this.ids.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.at.length && this.at[l] < this.at[m]) m = l;
      if (r < this.at.length && this.at[r] < this.at[m]) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }

  clear(): void {
    this.at.length = 0;
    this.ids.length = 0;
  }

  private swap(a: number, b: number): void {
    const t = this.at[a];
    this.at[a] = this.at[b];
    this.at[b] = t;
    const s = this.ids[a];
    this.ids[a] = this.ids[b];
    this.ids[b] = s;
  }
}
