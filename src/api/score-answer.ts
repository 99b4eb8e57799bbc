/**
 * Pieces of a Score answer that need nothing of IndexerApi's state (kept out of indexer-api.ts, which holds both
 * Score paths): the deadline check between preparing and scoring, fail-open's zero scores, item messages.
 */

import { zeroScore, type ScoreResult } from '../scoring/index.js';
import { ApiError } from './errors.js';
import type { ItemInfoMsg } from './messages.js';
import type { Cancellation, PromptItem } from './prompt-frontend.js';

export function checkDeadline(signal?: Cancellation): void {
  if (signal?.aborted) throw new ApiError('deadline_exceeded', '', 'the call was cancelled or its deadline passed');
}

export function zeroResult(blocks: number, maxBlocks: number, candidates?: readonly string[]): ScoreResult {
  const totalBlocks = maxBlocks ? Math.min(blocks, maxBlocks) : blocks;
  return {
    totalBlocks,
    scores: (candidates ?? []).map(zeroScore),
  };
}

export function toItemMsg(i: PromptItem): ItemInfoMsg {
  return {
    offset: i.offset,
    length: i.length,
    identifier: i.identifier,
    estimated: i.estimated,
    identifierSource: i.identifierSource ?? '',
    fetchOutcome: i.fetchOutcome ?? '',
  };
}
