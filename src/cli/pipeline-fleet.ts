import { ApiError, type EndpointInfo, type Fleet } from '../api/index.js';
import type { EventPipeline, Ingestor } from '../events/index.js';
import type { Index } from '../index/index.js';

/**
 * The fleet as the live pipeline sees it: endpoints that have published, with their last sequence and entries by
 * tier. Runtime add/remove needs connect-mode subscribers per endpoint, which this pipeline does not manage yet.
 */
export class PipelineFleet implements Fleet {
  constructor(
    private readonly pipeline: EventPipeline,
    private readonly ingestor: Ingestor,
    private readonly index: Index,
  ) {}

  async list(): Promise<EndpointInfo[]> {
    const out: EndpointInfo[] = [];
    for (const [endpoint, lastSeq] of this.pipeline.endpoints()) {
      out.push({
        endpoint,
        models: [],
        blocksByTier: await this.index.endpointEntries(endpoint),
        lastSeq,
        gaps: 0,
        replays: 0,
        lastEventAgeSeconds: null,
        state: 'live',
      });
    }
    return out.sort((a, b) => (a.endpoint < b.endpoint ? -1 : 1));
  }

  async add(): Promise<EndpointInfo> {
    throw new ApiError('failed_precondition', '', 'adding endpoints at run time needs connect-mode subscribers, not configured');
  }

  async remove(): Promise<number> {
    throw new ApiError('failed_precondition', '', 'removing endpoints at run time needs connect-mode subscribers, not configured');
  }

  async clear(endpoint: string): Promise<number> {
    const before = Object.values(await this.index.endpointEntries(endpoint)).reduce((a, b) => a + b, 0);
    this.ingestor.clear(endpoint);
    await this.index.flush();
    return before;
  }
}
