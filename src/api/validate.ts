import { isIpLiteral, parseEndpointIdentity } from '../common/index.js';
import { parseKey } from '../keys/index.js';
import { exhausted, invalid } from './errors.js';
import type { MultimodalItemMsg } from './messages.js';

export function checkEndpoint(field: string, value: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(field, 'is required');
  // `<host>:<port>`, optionally `@dp<rank>` (data-parallel rank > 0), as the transport names endpoints (src/common/).
  if (value.length > 300 || !parseEndpointIdentity(value).ok)
    throw invalid(field, `"${truncate(value)}" is not <host>:<port>`);
  return value;
}

/**
 * An endpoint the way a picker names its candidates (llm-d: the pod's IP and port): `10.0.0.5:8000`, `[fd00::5]:8000`.
 * Host names are refused unless `allowHostnames` (api.allowHostnameEndpoints, or an admin token guards the call):
 * an unauthenticated caller must not make the service connect to, or reserve cache for, arbitrary names.
 */
export function checkCandidateShaped(field: string, value: string, allowHostnames: boolean): string {
  checkEndpoint(field, value);
  if (allowHostnames) return value;
  // An IP literal (dotted IPv4 or bracketed IPv6); the port and `@dp<rank>` were checked by checkEndpoint.
  const parsed = parseEndpointIdentity(value);
  if (!parsed.ok || !isIpLiteral(parsed.value.host)) {
    throw invalid(
      field,
      `"${truncate(value)}" is not <ip>:<port> (host names are refused without an admin token; see api.allowHostnameEndpoints)`,
    );
  }
  return value;
}

/**
 * Endpoint names already checked: a picker sends the same few candidates on every call, so the regular expression
 * runs once per name. Bounded: cleared when full.
 */
const checkedEndpoints = new Set<string>();
const CHECKED_ENDPOINTS_MAX = 4096;

/** `field` is the request's name for the list (llm-d's GetPodScores calls it pod_identifiers). */
export function checkCandidates(
  values: readonly string[],
  max: number,
  field = 'candidates',
): readonly string[] | undefined {
  if (values.length === 0) return undefined;
  if (values.length > max) throw exhausted(field, `${values.length} candidates, at most ${max}`);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (checkedEndpoints.has(v)) continue;
    checkEndpoint(`${field}[${i}]`, v);
    if (checkedEndpoints.size >= CHECKED_ENDPOINTS_MAX) checkedEndpoints.clear();
    checkedEndpoints.add(v);
  }
  return values;
}

export function checkModel(value: string, field = 'model'): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(field, 'is required');
  if (value.length > 512) throw invalid(field, 'is longer than 512 characters');
  return checkUtf8(field, value);
}

/**
 * Protobuf decoding replaces invalid UTF-8 with U+FFFD instead of failing; a name that went through that would
 * silently hash to a different chain root, so it is rejected.
 */
export function checkUtf8(field: string, value: string): string {
  if (value.includes('\uFFFD')) throw invalid(field, 'is not valid UTF-8');
  return value;
}

export function parseBlockKeys(field: string, values: readonly string[], max: number): BigUint64Array {
  if (values.length > max) throw exhausted(field, `${values.length} block keys, at most ${max}`);
  const keys = new BigUint64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    try {
      keys[i] = parseKey(values[i]);
    } catch (err) {
      throw invalid(`${field}[${i}]`, (err as Error).message);
    }
  }
  return keys;
}

export function checkTokens(field: string, values: Uint32Array | readonly number[], max: number): Uint32Array {
  if (values.length > max) throw exhausted(field, `${values.length} tokens, at most ${max}`);
  // The decoders already guarantee uint32 values; the Score decoder hands over the typed array itself.
  return values instanceof Uint32Array ? values : Uint32Array.from(values);
}

/** Longest multimodal identifier: it is hashed into every block its item covers. */
export const MAX_IDENTIFIER_LENGTH = 512;

/**
 * Multimodal items of a tokens request. Every block an item overlaps hashes its identifier, so the work is the sum
 * over items of the blocks each covers: besides the count (`maxItems`) and the identifier length, that sum is bounded
 * by the prompt's blocks plus the items (what items that do not overlap each other can reach), so piled-up overlapping
 * items cannot make a small request hash for minutes.
 */
export function checkItems(
  field: string,
  items: readonly MultimodalItemMsg[],
  tokenCount: number,
  limits: { maxItems: number; blockSize: number },
) {
  if (items.length > limits.maxItems) throw exhausted(field, `${items.length} items, at most ${limits.maxItems}`);
  const B = limits.blockSize;
  let covered = 0;
  const out = items.map((item, i) => {
    const at = `${field}[${i}]`;
    if (!item.identifier) throw invalid(`${at}.identifier`, 'is required');
    if (item.identifier.length > MAX_IDENTIFIER_LENGTH)
      throw invalid(`${at}.identifier`, `is longer than ${MAX_IDENTIFIER_LENGTH} characters`);
    if (item.length === 0) throw invalid(`${at}.length`, 'must be > 0');
    if (item.offset + item.length > tokenCount) {
      throw invalid(at, `range [${item.offset}, ${item.offset + item.length}) is past the ${tokenCount} tokens`);
    }
    covered += Math.floor((item.offset + item.length - 1) / B) - Math.floor(item.offset / B) + 1;
    return { identifier: item.identifier, offset: item.offset, length: item.length };
  });
  const bound = Math.ceil(tokenCount / B) + items.length;
  if (covered > bound)
    throw exhausted(
      field,
      `the items overlap too much: they cover ${covered} blocks in all, at most ${bound} (blocks + items)`,
    );
  return out;
}

export function checkTierWeights(weights: Record<string, number>): Record<string, number> | undefined {
  const entries = Object.entries(weights);
  if (entries.length === 0) return undefined;
  for (const [tier, w] of entries) {
    if (!Number.isFinite(w) || w < 0) throw invalid(`tier_weights[${tier}]`, `must be a finite number ≥ 0, got ${w}`);
  }
  return weights;
}

export function parseJsonField(field: string, text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid(field, `is not valid JSON: ${(err as Error).message}`);
  }
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
