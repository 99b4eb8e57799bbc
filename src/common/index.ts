/** Public surface of the leaf every folder may import. */
export {
  formatEndpointIdentity,
  formatHostPort,
  formatTcpAddress,
  isHost,
  isIpLiteral,
  MAX_PORT,
  MIN_PORT,
  parseEndpointIdentity,
  parseHostPort,
  parsePort,
  parseTcpAddress,
  rankHostPort,
  rankIdentity,
  rankPort,
  type EndpointIdentity,
  type HostPort,
  type IdentityProblem,
  type Parsed,
} from './endpoint-identity.js';
export { ERROR_CODES, IndexerError, InvalidInputError, type ErrorCode } from './errors.js';
export { DEFAULT_TIER_WEIGHT_TABLE, UNKNOWN_TIER_WEIGHT } from './tier-weights.js';
export { fromHalves, hi32, KeyHalves, lo32 } from './uint64-halves.js';
export { WordSlab } from './word-slab.js';
export type { Log } from './log.js';
export type { CounterFamily } from './counter-family.js';
