/** Load-aware selection: in-flight ledger, the cost model, learned prefill throughput, scraped load (interface). */
export type { LoadSource, ScrapedLoad } from './load-source.js';
export {
  MemoryInflightLedger,
  LedgerError,
  checkCount,
  MAX_TOKEN_COUNT,
  MAX_RESERVATION_TTL_MS,
  type InflightLedger,
  type InflightLoad,
  type NewReservation,
  type Reservation,
  type RetireReason,
  type LedgerErrorCode,
} from './inflight.js';
export {
  decide,
  predictTtftMs,
  requestDigest,
  tieHash,
  POLICIES,
  DEFAULT_POLICY,
  KV_USAGE_EXCLUSION,
  type Policy,
  type CostParams,
  type CostInput,
  type CandidateCost,
  type Decision,
} from './cost-model.js';
export { ThroughputTable } from './throughput.js';
