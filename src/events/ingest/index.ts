export { Ingestor, INDEXED_SPEC_KINDS, type IngestorOptions } from './ingestor.js';
export { IngestCounters, INGEST_COUNTER_FAMILIES } from './counters.js';
export { containedEnd, containedFirst, pairedEnd, pairedFirst } from './pairing.js';
export { type StoreBound } from './store-bound.js';
