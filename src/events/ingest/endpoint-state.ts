import { EngineKeyMap } from '../../index/engine-key-map.js';
import { SpanTable } from './spans.js';

/** What ingest keeps per endpoint: the engine-key bridge and the canonical blocks made of several engine blocks. */
export class EndpointState {
  readonly map: EngineKeyMap;
  readonly spans = new SpanTable();

  constructor(trackAnchors: boolean) {
    this.map = new EngineKeyMap(trackAnchors);
  }

  get byteLength(): number {
    return this.map.byteLength + this.spans.byteLength;
  }

  clear(): void {
    this.map.clear();
    this.spans.clear();
  }
}
