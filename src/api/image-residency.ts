import { MAX_IDENTIFIER_LENGTH, type ImageResidency } from '../index/index.js';
import { invalid } from './errors.js';
import type { EndpointScoreMsg, LookupImagesRequestMsg, LookupImagesResponseMsg } from './messages.js';
import type { PromptItem } from './prompt-frontend.js';
import { checkCandidates, checkUtf8 } from './validate.js';

/** What the API reads from encoder residency: the lookups and the figures GetStats reports. */
export interface ResidencyView extends ImageResidency {
  readonly entries: number;
  readonly endpointCount: number;
  readonly evictionsTotal: number;
}

/**
 * Score's images_seen (EndpointScore field 7): per score, how many of the request's items its endpoint has seen. Only
 * requests with items come here, so the hot path of text requests allocates nothing for it.
 */
export function addImagesSeen(
  residency: ImageResidency,
  scores: EndpointScoreMsg[],
  items: readonly PromptItem[],
): void {
  const identifiers = items.map((i) => i.identifier);
  for (const s of scores) s.imagesSeen = residency.imagesSeen(s.endpoint, identifiers);
}

/** LookupImages: each identifier (request order) with the endpoints that have seen it, most recent first. */
export function lookupImages(
  residency: ImageResidency | undefined,
  req: LookupImagesRequestMsg,
  limits: { maxItems: number; maxCandidates: number },
): LookupImagesResponseMsg {
  const identifiers = checkImageIdentifiers(req.identifiers ?? [], limits.maxItems);
  const candidates = checkCandidates(req.candidates ?? [], limits.maxCandidates) ?? null;
  return {
    images: identifiers.map((identifier) => ({
      identifier,
      endpoints: residency ? residency.endpointsOf(identifier, candidates) : [],
    })),
  };
}

/** 1..maxItems (api.maxItems, the images one request may carry) non-empty identifiers of at most 256 characters. */
export function checkImageIdentifiers(values: readonly string[], maxItems: number): readonly string[] {
  if (values.length === 0) throw invalid('identifiers', 'at least one identifier is required');
  if (values.length > maxItems)
    throw invalid('identifiers', `${values.length} identifiers, at most ${maxItems} (api.maxItems)`);
  values.forEach((v, i) => {
    if (v.length === 0) throw invalid(`identifiers[${i}]`, 'is empty');
    if (v.length > MAX_IDENTIFIER_LENGTH)
      throw invalid(`identifiers[${i}]`, `is longer than ${MAX_IDENTIFIER_LENGTH} characters`);
    checkUtf8(`identifiers[${i}]`, v);
  });
  return values;
}
