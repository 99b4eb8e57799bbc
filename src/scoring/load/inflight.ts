import { randomBytes } from 'node:crypto';
import { IndexerError } from '../../common/index.js';
import { ExpiryHeap } from './reservation-heap.js';

/**
 * In-flight accounting of the service's own routing decisions (issue 14 §1): a Select with `reserve` records the
 * chosen endpoint's extra prefill work (the request's uncached tokens) and decode pressure (its expected output
 * blocks); PrefillComplete retires the prefill part, Release (or the TTL, for callers that vanish) retires all.
 *
 * Behind an interface with two implementations: the memory ledger below, per process, and RedisInflightLedger
 * (redis-ledger.ts), shared by every replica through Redis (select.ledger; docs/api.md, "Reservations").
 */

/** Token counts above this are refused as absurd (no engine prefills 10M tokens in one request). */
export const MAX_TOKEN_COUNT = 10_000_000;
/** Longest reservation TTL a caller may ask for (1 hour). */
export const MAX_RESERVATION_TTL_MS = 3_600_000;

export interface NewReservation {
  /** Canonical endpoint identity (`<ip>:<port>[@dp<r>]`). */
  endpoint: string;
  uncachedPrefillTokens: number;
  expectedDecodeBlocks: number;
  ttlMs: number;
  /** For calibration: the cached tokens Select predicted on this endpoint, and the prompt's tokens. */
  predictedCachedTokens: number;
  promptTokens: number;
}

export interface Reservation extends NewReservation {
  /** 128 random bits, hex. */
  id: string;
  createdAt: number;
  expiresAt: number;
  prefillDone: boolean;
}

/** What one endpoint owes to reservations not yet retired. */
export interface InflightLoad {
  prefillTokens: number;
  decodeBlocks: number;
  reservations: number;
}

export type RetireReason = 'prefill_complete' | 'release' | 'ttl';

export type LedgerErrorCode = 'invalid_argument' | 'not_found' | 'failed_precondition' | 'resource_exhausted';

/** A refused ledger operation: nothing changed. `field` names the offending request field. */
export class LedgerError extends IndexerError {
  declare readonly code: LedgerErrorCode;
  constructor(code: LedgerErrorCode, field: string, message: string) {
    super(code, field, message);
  }
}

export interface InflightLedger {
  /** Records a reservation; returns it with its id. Refused (LedgerError) when full or the counts are absurd. */
  reserve(r: NewReservation): Promise<Reservation>;
  /** Retires the reservation's prefill tokens (its decode pressure stays until Release or TTL). */
  prefillComplete(id: string): Promise<Reservation>;
  /** Retires the reservation entirely. */
  release(id: string): Promise<Reservation>;
  /** Undoes a reservation whose Select failed after it was recorded (not counted as retired). */
  cancel(id: string): Promise<void>;
  /** In-flight load of each endpoint asked for (zeros for one with none). */
  loads(endpoints: readonly string[]): Promise<InflightLoad[]>;
  /** Live reservations. */
  size(): number;
  /** Reservations retired so far, by reason. */
  readonly retired: Readonly<Record<RetireReason, number>>;
}

export interface LedgerOptions {
  maxReservations: number;
  clock?: () => number;
  /** Id source (tests); default 16 random bytes as hex. */
  newId?: () => string;
}

const ZERO: InflightLoad = Object.freeze({ prefillTokens: 0, decodeBlocks: 0, reservations: 0 });

/** Checks a count the ledger would store: a non-negative integer ≤ MAX_TOKEN_COUNT. */
export function checkCount(field: string, value: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new LedgerError('invalid_argument', field, `must be a non-negative integer, got ${String(value)}`);
  }
  if (value > MAX_TOKEN_COUNT)
    throw new LedgerError('invalid_argument', field, `${value} is absurd (at most ${MAX_TOKEN_COUNT})`);
  return value;
}

/** The per-process ledger: a map of reservations, per-endpoint sums kept as they change, an expiry heap. */
export class MemoryInflightLedger implements InflightLedger {
  private readonly live = new Map<string, Reservation>();
  private readonly perEndpoint = new Map<string, InflightLoad>();
  private readonly expiries = new ExpiryHeap();
  private readonly clock: () => number;
  private readonly newId: () => string;
  readonly retired: Record<RetireReason, number> = { prefill_complete: 0, release: 0, ttl: 0 };

  constructor(private readonly options: LedgerOptions) {
    this.clock = options.clock ?? Date.now;
    this.newId = options.newId ?? (() => randomBytes(16).toString('hex'));
  }

  async reserve(r: NewReservation): Promise<Reservation> {
    checkCount('uncached_prefill_tokens', r.uncachedPrefillTokens);
    checkCount('expected_decode_blocks', r.expectedDecodeBlocks);
    if (!Number.isInteger(r.ttlMs) || r.ttlMs < 1 || r.ttlMs > MAX_RESERVATION_TTL_MS) {
      throw new LedgerError(
        'invalid_argument',
        'reservation_ttl_ms',
        `must be 1..${MAX_RESERVATION_TTL_MS}, got ${r.ttlMs}`,
      );
    }
    const now = this.clock();
    this.expire(now);
    if (this.live.size >= this.options.maxReservations) {
      throw new LedgerError(
        'resource_exhausted',
        'reserve',
        `${this.live.size} reservations in flight, at most select.maxReservations (${this.options.maxReservations})`,
      );
    }
    let id = this.newId();
    while (this.live.has(id)) id = this.newId();
    const res: Reservation = { ...r, id, createdAt: now, expiresAt: now + r.ttlMs, prefillDone: false };
    this.live.set(id, res);
    this.expiries.push(res.expiresAt, id);
    this.apply(r.endpoint, r.uncachedPrefillTokens, r.expectedDecodeBlocks, 1);
    return res;
  }

  async prefillComplete(id: string): Promise<Reservation> {
    const res = this.find(id);
    if (res.prefillDone)
      throw new LedgerError(
        'failed_precondition',
        'reservation_id',
        `reservation ${id} already had its PrefillComplete`,
      );
    res.prefillDone = true;
    this.apply(res.endpoint, -res.uncachedPrefillTokens, 0, 0);
    this.retired.prefill_complete++;
    return res;
  }

  async release(id: string): Promise<Reservation> {
    const res = this.find(id);
    this.drop(res);
    this.retired.release++;
    // Released reservations leave their heap entries behind: rebuild once stale entries outnumber live ones.
    if (this.expiries.size > 2 * this.live.size + 1024) {
      this.expiries.clear();
      for (const r of this.live.values()) this.expiries.push(r.expiresAt, r.id);
    }
    return res;
  }

  async cancel(id: string): Promise<void> {
    const res = this.live.get(id);
    if (res) this.drop(res);
  }

  async loads(endpoints: readonly string[]): Promise<InflightLoad[]> {
    this.expire(this.clock());
    return endpoints.map((e) => this.perEndpoint.get(e) ?? ZERO);
  }

  size(): number {
    this.expire(this.clock());
    return this.live.size;
  }

  /** A live reservation by id (after expiring what is due), for tests and diagnostics. */
  get(id: string): Reservation | undefined {
    this.expire(this.clock());
    return this.live.get(id);
  }

  private find(id: string): Reservation {
    this.expire(this.clock());
    const res = this.live.get(id);
    if (!res)
      throw new LedgerError('not_found', 'reservation_id', `no reservation ${id} (unknown, released or expired)`);
    return res;
  }

  /** Retires every reservation whose TTL has passed (counted as `ttl`). */
  private expire(now: number): void {
    while (this.expiries.peek() <= now) {
      const { expiresAt, id } = this.expiries.pop()!;
      const res = this.live.get(id);
      // A reservation released earlier left its heap entry behind: skip it.
      if (!res || res.expiresAt !== expiresAt) continue;
      this.drop(res);
      this.retired.ttl++;
    }
    if (this.live.size === 0 && this.expiries.size > 0) this.expiries.clear();
  }

  private drop(res: Reservation): void {
    this.live.delete(res.id);
    this.apply(res.endpoint, res.prefillDone ? 0 : -res.uncachedPrefillTokens, -res.expectedDecodeBlocks, -1);
  }

  private apply(endpoint: string, prefill: number, decode: number, count: number): void {
    const cur = this.perEndpoint.get(endpoint) ?? { prefillTokens: 0, decodeBlocks: 0, reservations: 0 };
    const next = {
      prefillTokens: cur.prefillTokens + prefill,
      decodeBlocks: cur.decodeBlocks + decode,
      reservations: cur.reservations + count,
    };
    if (next.reservations === 0) this.perEndpoint.delete(endpoint);
    else this.perEndpoint.set(endpoint, next);
  }
}
