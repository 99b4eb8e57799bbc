import { decodeEventBatch, PayloadError, type WireFormat } from './decode/index.js';
import { parseLiveFrames } from './frames.js';
import { Ingestor } from './ingest/index.js';
import { parseTopic, rankIdentity } from './topic.js';

export interface PipelineCounters {
  messages: number;
  /** Messages dropped before decoding, by reason (frame_count, bad_seq, bad_topic). */
  dropped: Record<string, number>;
  /** Payloads that could not be decoded at all, and events skipped inside decodable payloads, by reason. */
  decodeErrors: Record<string, number>;
  /** Sequence numbers that skipped ahead (messages lost between publisher and us). */
  sequenceGaps: number;
  /** Sequence numbers at or below the last applied one (dropped as duplicates). */
  duplicates: number;
}

export interface PipelineLog {
  warn(fields: object, message: string): void;
}

/**
 * Frames → topic → msgpack → ingest, for live messages. Tracks the last sequence per endpoint identity: duplicates
 * are dropped and gaps counted. (Replay-based gap recovery belongs to the transport layer.)
 */
export class EventPipeline {
  readonly counters: PipelineCounters = { messages: 0, dropped: {}, decodeErrors: {}, sequenceGaps: 0, duplicates: 0 };
  private readonly lastSeq = new Map<string, bigint>();
  private readonly badTopicsLogged = new Set<string>();

  constructor(
    private readonly ingestor: Ingestor,
    private readonly log: PipelineLog,
    private readonly format: WireFormat = 'vllm',
  ) {}

  /** Handles one received message; never throws on bad input (it is counted and, once per topic, logged). */
  async handle(frames: readonly Uint8Array[]): Promise<void> {
    this.counters.messages++;
    const parsed = parseLiveFrames(frames);
    if (!parsed.ok) return this.drop(parsed.reason);
    const { topic, seq, payload } = parsed.message;
    const t = parseTopic(topic);
    if (!t.ok) {
      if (!this.badTopicsLogged.has(topic) && this.badTopicsLogged.size < 1000) {
        this.badTopicsLogged.add(topic);
        this.log.warn({ topic }, t.reason);
      }
      return this.drop('bad_topic');
    }
    let batch;
    try {
      batch = decodeEventBatch(payload, this.format);
    } catch (err) {
      if (err instanceof PayloadError) {
        this.bump(this.counters.decodeErrors, err.reason);
        return;
      }
      throw err;
    }
    for (const issue of batch.issues) this.bump(this.counters.decodeErrors, issue.reason);
    const identity = rankIdentity(t.topic.endpoint, batch.dataParallelRank);
    const last = this.lastSeq.get(identity);
    if (last !== undefined) {
      if (seq <= last) {
        this.counters.duplicates++;
        return;
      }
      if (seq > last + 1n) this.counters.sequenceGaps++;
    }
    this.lastSeq.set(identity, seq);
    await this.ingestor.apply(identity, t.topic.model, batch.events);
  }

  /** Endpoint identities seen so far with their last sequence number. */
  endpoints(): Map<string, bigint> {
    return new Map(this.lastSeq);
  }

  private drop(reason: string): void {
    this.bump(this.counters.dropped, reason);
  }

  private bump(counts: Record<string, number>, reason: string): void {
    counts[reason] = (counts[reason] ?? 0) + 1;
  }
}
