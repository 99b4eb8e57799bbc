/**
 * The read path's front door: gRPC (kvindexer.v1, llm-d's indexer.v1, health, reflection) over IndexerApi, which
 * prepares prompts (prepare.ts → keys) and scores them (src/scoring) against the index.
 */
export { IndexerApi, type ApiLimits, type ApiObserver, type IndexerApiDeps } from './indexer-api.js';
export { GrpcServer, relaySocketPrefix, type GrpcServerOptions } from './grpc-server.js';
export { HealthService, type ServingStatus } from './health.js';
export { ApiError, type ApiErrorCode } from './errors.js';
export type { Fleet, EndpointInfo, EndpointScrape, AddEndpointRequest } from './fleet.js';
export type {
  Cancellation,
  PromptFrontend,
  RenderedPrompt,
  PromptItem,
  ChatRequestInput,
  CompletionRequestInput,
} from './prompt-frontend.js';
export { loadProtos, PROTO_DIR, LOADER_OPTIONS } from './proto.js';
export { SelectApi, type SelectApiDeps, type SelectObserver, type SelectSettings } from './select.js';
export type { Speculate } from './speculation-quota.js';
export { GUARD_COUNTER_FAMILIES } from './connection-limits.js';
export { forwardOperations, localOperations, OPERATION_PATHS, type Operations, type Operation } from './operations.js';
export { WireOperations, type WireReply } from './wire-operations.js';
export { CallStatus, STATUS_OF } from './grpc-status.js';
