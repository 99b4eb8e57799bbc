import type { Index } from '../index/index.js';
import { exhausted } from './errors.js';

/**
 * Per-caller bound on speculative entries (Reserve, Score.speculate). Each caller (the peer's address: the router
 * pod) may hold at most `max` speculative entries that have not expired; a reservation that would go past it is
 * refused with RESOURCE_EXHAUSTED and changes nothing. Without it, one client filled the index with 3.3M speculative
 * entries in 11 s, evicting real ones. Entries are counted at reservation and forgotten at their TTL (a Release
 * gives its count back early); what the index evicted meanwhile still counts until its TTL: a bound, never a leak.
 */
export class SpeculationQuota {
  /** Per caller: its reservations, oldest first, and the entries they hold. */
  private readonly callers = new Map<string, { batches: { expiresAt: number; n: number }[]; held: number }>();

  constructor(
    private readonly max: number,
    private readonly clock: () => number = Date.now,
    /** Callers tracked at once; the one idle longest is dropped first (its reservations expire anyway). */
    private readonly maxCallers = 10_000,
  ) {}

  /** Counts `n` entries for `caller` until `ttlMs` from now, or throws RESOURCE_EXHAUSTED naming `field`. */
  take(caller: string, n: number, ttlMs: number, field: string): void {
    if (this.max <= 0) return;
    const now = this.clock();
    let c = this.callers.get(caller);
    if (c) {
      this.expire(c, now);
      this.callers.delete(caller); // re-inserted below: the Map's order is least recently used first
    } else c = { batches: [], held: 0 };
    if (c.held + n > this.max) {
      this.callers.set(caller, c);
      throw this.refusal(caller, c.held, n, field);
    }
    c.batches.push({ expiresAt: now + ttlMs, n });
    c.held += n;
    this.callers.set(caller, c);
    if (this.callers.size > this.maxCallers) this.callers.delete(this.callers.keys().next().value as string);
  }

  /**
   * Throws what `take` would for `n` more entries of `caller`, counting nothing: the check Select makes before its
   * ledger entry (the entries and their count come after it, through a `Speculate`).
   */
  check(caller: string, n: number, field: string): void {
    if (this.max <= 0) return;
    const held = this.held(caller);
    if (held + n > this.max) throw this.refusal(caller, held, n, field);
  }

  private refusal(caller: string, held: number, n: number, field: string) {
    return exhausted(
      field,
      `${caller} holds ${held} speculative entries; ${n} more would pass api.maxSpeculativePerCaller (${this.max})`,
    );
  }

  /** A Release: gives back up to `n` entries of the caller's oldest reservations. */
  giveBack(caller: string, n: number): void {
    const c = this.callers.get(caller);
    if (!c) return;
    while (n > 0 && c.batches.length > 0) {
      const b = c.batches[0];
      const k = Math.min(n, b.n);
      b.n -= k;
      c.held -= k;
      n -= k;
      if (b.n === 0) c.batches.shift();
    }
  }

  held(caller: string): number {
    const c = this.callers.get(caller);
    if (!c) return 0;
    this.expire(c, this.clock());
    return c.held;
  }

  private expire(c: { batches: { expiresAt: number; n: number }[]; held: number }, now: number): void {
    // TTLs differ per reservation, so the list is not sorted by expiry: drop expired ones wherever they are.
    if (c.batches.length === 0) return;
    let kept = 0;
    for (const b of c.batches) {
      if (b.expiresAt <= now) c.held -= b.n;
      else c.batches[kept++] = b;
    }
    c.batches.length = kept;
  }
}

/**
 * Records speculative entries (Reserve, a Select's pick, Score's `speculate`) with the caller's quota: here
 * (`speculateHere`), or where every replica sees them (a serving process of api.processes: a Reserve through the
 * primary). Throws when refused (an ApiError naming `field`) or when the write fails, recording nothing.
 */
export type Speculate = (
  caller: string,
  endpoint: string,
  keys: BigUint64Array,
  ttlMs: number,
  /** The request field a refusal names (`reserve` for Select, `speculate` for Score), as the local quota would. */
  field: string,
) => Promise<void>;

/** Speculative entries recorded in this process: the caller's quota taken, then `index` written (the quota given back
 * if the write fails). */
export function speculateHere(quota: SpeculationQuota, index: Pick<Index, 'reserve'>): Speculate {
  return async (caller, endpoint, keys, ttlMs, field) => {
    quota.take(caller, keys.length, ttlMs, field);
    try {
      await index.reserve(endpoint, keys, ttlMs);
    } catch (err) {
      quota.giveBack(caller, keys.length);
      throw err;
    }
  };
}
