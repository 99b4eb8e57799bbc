/** Select, PrefillComplete and ReleaseReservation as proto-loader hands them over (see messages.ts). */

import type { PromptFields } from './messages.js';

export interface SelectRequestMsg extends PromptFields {
  candidates: string[];
  tierWeights: Record<string, number>;
  policy: string;
  reserve: boolean;
  /** proto3 optional: absent when unset. */
  expectedOutputTokens?: number | null;
  reservationTtlMs: number;
}

export interface CandidateCostMsg {
  endpoint: string;
  cachedBlocks: number;
  cachedBlocksByTier: Record<string, number>;
  uncachedPrefillTokens: number;
  inflightPrefillTokens: string;
  inflightDecodeBlocks: string;
  running: number;
  waiting: number;
  kvUsage: number;
  loadScraped: boolean;
  prefillTokensPerSecond: number;
  encodeTokens: number;
  encodeMs: number;
  predictedTtftMs: number;
  cost: number;
  excludedReason: string;
}

export interface SelectResponseMsg {
  endpoint: string;
  reservationId: string;
  policy: string;
  totalBlocks: number;
  tokenCount: number;
  blockSize: number;
  candidates: CandidateCostMsg[];
}

export interface PrefillCompleteRequestMsg {
  reservationId: string;
  /** int64 as a decimal string (proto3 optional: absent when unset). */
  cachedTokens?: string | number | null;
  prefillMs?: number | null;
}

export interface ReleaseReservationRequestMsg {
  reservationId: string;
}

/** GetStatsResponse fields 30–34. */
export interface SelectStatsMsg {
  inflightReservations: string;
  selectCalls: string;
  calibratedPrefills: string;
  cachedTokensPredicted: string;
  cachedTokensActual: string;
}
