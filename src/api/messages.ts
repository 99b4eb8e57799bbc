/**
 * Request and response shapes of kvindexer.v1 as @grpc/proto-loader hands them over (camelCase fields, uint64 as
 * decimal strings, defaults filled in, `input` naming the oneof member that is set).
 */

import type { CandidateScore } from '../scoring/index.js';

export interface ChatInputMsg {
  messagesJson: string;
  addGenerationPrompt?: boolean;
  continueFinalMessage: boolean;
  chatTemplateKwargsJson: string;
  mmProcessorKwargsJson: string;
  toolsJson?: string;
  toolChoice?: string;
  documentsJson?: string;
  chatTemplate?: string;
  reasoningEffort?: string;
  /** The request's max_completion_tokens, else max_tokens (proto3 optional: absent when unset). */
  maxTokens?: number;
}

export interface MultimodalItemMsg {
  identifier: string;
  offset: number;
  length: number;
}

export interface TokenInputMsg {
  /** A Uint32Array from the Score decoder (wire/score-request.ts), numbers from proto-loader. */
  tokenIds: Uint32Array | number[];
  items: MultimodalItemMsg[];
}

export interface PromptFields {
  model: string;
  loraName?: string;
  cacheSalt?: string;
  input?: 'chat' | 'prompt' | 'tokens' | 'blockKeys';
  chat?: ChatInputMsg | null;
  prompt?: string;
  tokens?: TokenInputMsg | null;
  blockKeys?: { keys: string[] } | null;
}

export interface ScoreRequestMsg extends PromptFields {
  candidates: string[];
  tierWeights: Record<string, number>;
  maxBlocks: number;
  speculate?: { endpoint: string; ttlMs: number } | null;
  returnBlockKeys: boolean;
  strict: boolean;
}

/**
 * Scores travel as the scorer computes them, plus `imagesSeen` (field 7, encoder residency) set by Score only when
 * the request has multimodal items (absent = 0).
 */
export type EndpointScoreMsg = CandidateScore & { imagesSeen?: number };

export interface ItemInfoMsg {
  offset: number;
  length: number;
  identifier: string;
  estimated: boolean;
  identifierSource: string;
  fetchOutcome: string;
}

export interface FingerprintMsg {
  scheme: string;
  hashSeed: string;
  blockSize: number;
}

export interface ScoreResponseMsg {
  totalBlocks: number;
  blockSize: number;
  tokenCount: number;
  scores: EndpointScoreMsg[];
  items: ItemInfoMsg[];
  fingerprint: FingerprintMsg;
  blockKeys: string[];
  degraded: boolean;
  degradedReason: string;
  /** No followed endpoint has published this model (field 10). */
  unknownModel: boolean;
}

export interface LookupRequestMsg {
  blockKeys: string[];
  candidates: string[];
  tierWeights: Record<string, number>;
  maxBlocks: number;
}

export interface LookupImagesRequestMsg {
  identifiers: string[];
  candidates: string[];
}

export interface LookupImagesResponseMsg {
  images: { identifier: string; endpoints: string[] }[];
}

export interface EndpointInfoMsg {
  endpoint: string;
  models: string[];
  blocksByTier: Record<string, string>;
  lastSeq: string;
  gaps: string;
  replays: string;
  lastEventAgeSeconds: number;
  state: string;
  dataParallelRank: number;
  zmqAddress: string;
  discoveryUrl: string;
  discoveryError: string;
  discoveryFailures: string;
  storedBlocksByLocality: Record<string, string>;
  storedBlocksByOwnership: Record<string, string>;
  skippedEvents: Record<string, string>;
  /** Scraped load (fields 20-25): the three figures only while fresh. */
  scrapedRunning?: number;
  scrapedWaiting?: number;
  scrapedKvUsage?: number;
  scrapeAgeSeconds: number;
  scrapeError: string;
  metricsUrl: string;
}
