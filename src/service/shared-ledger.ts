/**
 * Select's in-flight ledger under `api.processes`: one for the whole service, held by the primary, so that a
 * reservation made through one serving process is known to all of them. A picker that scales over several
 * connections (node:cluster hands each to a process in turn) sends a Select's PrefillComplete or ReleaseReservation
 * on whichever connection its channel picks; with a ledger per process that follow-up reached a process that had
 * never heard of the reservation (NOT_FOUND), and each process priced the endpoints on its share of the reservations.
 *
 * `LedgerHost` is the primary's side (the memory ledger itself); `ProcessLedger` is the serving process's, an
 * `InflightLedger` whose every call is one round trip over the cluster's IPC channel — the shape of the Redis ledger
 * (scoring/load/redis-ledger.ts), with the primary in Redis's place: live count and TTL expiries travel with each
 * answer, refusals come back as the same `LedgerError`, and a primary that does not answer is the backend
 * unavailable (UNAVAILABLE at the API, as Redis down is).
 */
import { IndexUnavailableError } from '../index/index.js';
import {
  LedgerError,
  MemoryInflightLedger,
  type InflightLedger,
  type InflightLoad,
  type LedgerErrorCode,
  type NewReservation,
  type Reservation,
  type RetireReason,
} from '../scoring/load/index.js';
import { PendingReplies } from './pending-replies.js';

/** One ledger call as it crosses to the primary. */
export type LedgerCall =
  | { op: 'reserve'; reservation: NewReservation }
  | { op: 'prefill' | 'release' | 'cancel'; reservationId: string }
  | { op: 'loads'; endpoints: readonly string[] };

/**
 * Its answer. `live`: reservations in the ledger after the call; `expired`: reservations the call's expiry pass
 * retired by TTL, counted by the process that asked (so the processes' counters sum to the ledger's).
 */
export type LedgerAnswer = { live: number; expired: number } & (
  | { value: Reservation | readonly InflightLoad[] | null }
  | { refused: { code: LedgerErrorCode; field: string; message: string } }
  | { failure: string }
);

/** How long a serving process waits for the primary's answer before the ledger counts as unavailable. */
export const LEDGER_WAIT_MS = 5_000;

/** The primary's side: the service's one memory ledger, answering the serving processes' calls in arrival order. */
export class LedgerHost {
  private readonly ledger: MemoryInflightLedger;

  constructor(maxReservations: number, clock?: () => number) {
    this.ledger = new MemoryInflightLedger({ maxReservations, clock });
  }

  async answer(call: LedgerCall): Promise<LedgerAnswer> {
    // The memory ledger does a call's work before its promise settles, and the primary receives several messages
    // before any continuation runs: the live count and the expiries this call purged are read now, not after an
    // await (another call's expiries would fall in this call's window as well, and be counted twice).
    const expiredBefore = this.ledger.retired.ttl;
    const running = this.run(call);
    const live = this.ledger.size();
    const expired = this.ledger.retired.ttl - expiredBefore;
    try {
      return { live, expired, value: await running };
    } catch (err) {
      if (!(err instanceof LedgerError)) return { live, expired, failure: String(err) };
      return { live, expired, refused: { code: err.code, field: err.field, message: err.message } };
    }
  }

  private async run(call: LedgerCall): Promise<Reservation | readonly InflightLoad[] | null> {
    switch (call.op) {
      case 'reserve':
        return this.ledger.reserve(call.reservation);
      case 'prefill':
        return this.ledger.prefillComplete(call.reservationId);
      case 'release':
        return this.ledger.release(call.reservationId);
      case 'cancel':
        await this.ledger.cancel(call.reservationId);
        return null;
      case 'loads':
        return this.ledger.loads(call.endpoints);
    }
  }
}

/** A serving process's side: the primary's ledger behind the `InflightLedger` interface Select uses. */
export class ProcessLedger implements InflightLedger {
  /** This process's retirements (its PrefillComplete and Release calls, and the expiries its calls purged). */
  readonly retired: Record<RetireReason, number> = { prefill_complete: 0, release: 0, ttl: 0 };
  private live = 0;
  private readonly pending = new PendingReplies<LedgerAnswer | null>();

  constructor(
    /** Sends call `id` to the primary; its answer comes back through `settle`. */
    private readonly send: (id: number, call: LedgerCall) => void,
    private readonly waitMs = LEDGER_WAIT_MS,
  ) {}

  /** The primary's answer to call `id` (a late answer, after the call gave up, is dropped). */
  settle(id: number, answer: LedgerAnswer): void {
    this.pending.settle(id, answer);
  }

  reserve(reservation: NewReservation): Promise<Reservation> {
    return this.call({ op: 'reserve', reservation }) as Promise<Reservation>;
  }

  async prefillComplete(reservationId: string): Promise<Reservation> {
    const res = (await this.call({ op: 'prefill', reservationId })) as Reservation;
    this.retired.prefill_complete++;
    return res;
  }

  async release(reservationId: string): Promise<Reservation> {
    const res = (await this.call({ op: 'release', reservationId })) as Reservation;
    this.retired.release++;
    return res;
  }

  async cancel(reservationId: string): Promise<void> {
    await this.call({ op: 'cancel', reservationId });
  }

  loads(endpoints: readonly string[]): Promise<InflightLoad[]> {
    return this.call({ op: 'loads', endpoints }) as Promise<InflightLoad[]>; // a fresh array off the IPC channel
  }

  /** Live reservations in the service's ledger, as of this process's last ledger call (no round trip). */
  size(): number {
    return this.live;
  }

  private async call(call: LedgerCall): Promise<unknown> {
    const answer = await this.pending.ask(
      (id) => this.send(id, call),
      this.waitMs,
      () => null,
    );
    if (answer === null)
      throw new IndexUnavailableError(
        `the primary's in-flight ledger did not answer ${call.op} within ${this.waitMs} ms`,
      );
    this.live = answer.live;
    this.retired.ttl += answer.expired;
    if ('value' in answer) return answer.value;
    if ('refused' in answer) throw new LedgerError(answer.refused.code, answer.refused.field, answer.refused.message);
    throw new Error(`the primary's in-flight ledger failed ${call.op}: ${answer.failure}`);
  }
}
