/**
 * The write path, top to bottom: a ZMQ subscriber receives 3-frame messages (zmq-subscriber, frames), the topic names
 * the endpoint and model (topic), the msgpack payload is decoded for any vLLM version (decode/), and ingest applies
 * the events to the index through the engine-key bridge (ingest/). pipeline wires these together.
 */
export * from './types.js';
export { decodeEventBatch, normaliseHash, PayloadError, DECODE_REASONS, type WireFormat } from './decode/index.js';
export { Ingestor, IngestCounters, INDEXED_SPEC_KINDS } from './ingest/index.js';
export { parseTopic, rankIdentity, TOPIC_PREFIX, type ParsedTopic } from './topic.js';
export { parseLiveFrames, type LiveMessage } from './frames.js';
export { EventPipeline, type PipelineCounters } from './pipeline.js';
export { ZmqSubscriber, type SubscriberOptions } from './zmq-subscriber.js';
