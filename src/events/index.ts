/**
 * The write path, top to bottom: SUB sockets receive 3-frame messages (transport, zmq-subscriber, frames), the topic
 * names the endpoint and model (topic), the msgpack payload is decoded for any vLLM version (decode/), each
 * (endpoint, rank) stream applies the sequence rules and repairs gaps by replay (pipeline, stream, sequence,
 * replay-client), and ingest applies the events to the index through the engine-key bridge (ingest/).
 * recording/ captures and plays back raw streams (the vLLM publisher simulator is in src/sim/publisher/).
 */
export * from './types.js';
export { decodeEventBatch, normaliseHash, PayloadError, DECODE_REASONS, type WireFormat } from './decode/index.js';
export { Ingestor, IngestCounters, INDEXED_SPEC_KINDS, INGEST_COUNTER_FAMILIES } from './ingest/index.js';
export { parseTopic, rankIdentity, TOPIC_PREFIX, type ParsedTopic } from './wire/topic.js';
export { parseLiveFrames, type LiveMessage } from './wire/frames.js';
export { newTransportCounters, TRANSPORT_COUNTER_FAMILIES, type TransportCounters } from './counters.js';
export { type WireTally } from './wire-tally.js';
export { classifySeq, type SeqState, type SeqVerdict } from './wire/sequence.js';
export { requestReplay, ReplayError } from './replay-client.js';
export { parseReplyFrames, type ReplayLayout, type ReplayReply } from './wire/replay-protocol.js';
export {
  DEFAULT_STREAM_OPTIONS,
  type StreamOptions,
  type StreamStats,
  type StreamStatus,
  type UnrecoverablePolicy,
} from './stream/types.js';
export { EndpointStream } from './stream/worker.js';
export {
  BIND_ORIGIN,
  EventPipeline,
  type EndpointFigures,
  type EndpointInfo,
  type EndpointState,
  type MessageOrigin,
  type PipelineCounters,
  type PipelineOptions,
} from './pipeline.js';
export {
  bindReplayAddress,
  EndpointSpecError,
  parseEndpointSpec,
  rankAddress,
  rankIdentityOf,
  readEndpointFile,
  type EndpointSpec,
  type RankIdentities,
} from './endpoint-spec.js';
export {
  DISCOVERY_FAILURES,
  DiscoveryError,
  fetchEventSources,
  parseEventSources,
  sourcesUrl,
  type DiscoveredSource,
  type DiscoveryFailure,
} from './discovery-sources.js';
export {
  DEFAULT_DISCOVERY,
  DISCOVERY_COUNTER_FAMILIES,
  DiscoveryPoller,
  type DiscoveryCounters,
  type DiscoveryOptions,
  type DiscoveryStatus,
} from './discovery.js';
export { EventTransport, type ConnectedEndpoint, type EndpointOrigin, type TransportOptions } from './transport.js';
export { ZmqSubscriber, type CurveClientKeys, type SubscriberOptions } from './zmq-subscriber.js';
export { BindRelay } from './bind-relay.js';
export {
  readRecording,
  parseRecording,
  RecordingWriter,
  RecordingError,
  type RecordedMessage,
  type RecordingHeader,
} from './recording/format.js';
export { Recorder, type RecorderOptions } from './recording/recorder.js';
export { playIntoPipeline, publishRecording, RecordedReplayServer } from './recording/player.js';
export { closeOpenSockets } from './open-sockets.js';
