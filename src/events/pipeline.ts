import { decodeEventBatch, PayloadError, type WireFormat } from './decode/index.js';
import { Limiter } from './bounded-queue.js';
import { bump, newTransportCounters, type TransportCounters } from './counters.js';
import { parseLiveFrames } from './wire/frames.js';
import type { Ingestor } from './ingest/index.js';
import { DEFAULT_STREAM_OPTIONS, type ClearReason, type StreamContext } from './stream/types.js';
import { TurnBudget } from './stream/turn-budget.js';
import { EndpointStream } from './stream/worker.js';
import { parseTopic, rankIdentity, type TopicResult } from './wire/topic.js';
import { copyTally, newWireTally, tallyBatch, type WireTally } from './wire-tally.js';
import {
  BIND_ORIGIN,
  DROP_WARN_INTERVAL_MS,
  type EndpointFigures,
  type EndpointInfo,
  type EndpointState,
  MAX_PUBLISHED_MODELS,
  type MessageOrigin,
  PIPELINE_LIMITS,
  type PipelineLimits,
  type PipelineLog,
  type PipelineOptions,
} from './pipeline-types.js';

// The pipeline's types and limits live in pipeline-types.ts; importers of pipeline.js keep finding them here.
export * from './pipeline-types.js';

/**
 * Live messages → streams. Validates frames and topic, decodes the payload (its data-parallel rank names the
 * stream), and queues the batch on that (endpoint, rank)'s stream, whose worker applies the sequence rules and
 * replays gaps (stream/worker.ts). handle() never throws on bad input: it is counted and, once per topic, logged.
 *
 * An undecodable payload is a lost batch: its rank (hence its stream) is unknown, so no sequence state moves; the
 * next batch of that stream shows the gap and is repaired by replay like any loss.
 */
export class EventPipeline {
  readonly counters: TransportCounters = newTransportCounters();
  private readonly streams = new Map<string, EndpointStream>();
  private readonly badTopics = new Map<string, number>();
  private readonly mismatchLogged = new Set<string>();
  /** Parsed topics: a publisher sends the same topic on every message. */
  private readonly topics = new Map<string, TopicResult>();
  private readonly ctx: StreamContext;
  private readonly options: PipelineOptions;
  private readonly clock: () => number;
  private readonly limits: PipelineLimits;
  /** Identity → what its live batches said (wire-tally.ts); forgotten with the stream. */
  private readonly tallies = new Map<string, WireTally>();
  /** Model names of every valid topic received since start (Score's unknown_model flag). */
  private readonly publishedModels = new Set<string>();
  /** Batches dropped at endpoints.maxTracked since the last warning, and when that warning was logged. */
  private capacityDrops = 0;
  private capacityWarnedAt = -Infinity;

  constructor(
    private readonly ingestor: Ingestor,
    private readonly log: PipelineLog,
    formatOrOptions: WireFormat | PipelineOptions = 'vllm',
  ) {
    this.options = typeof formatOrOptions === 'string' ? { format: formatOrOptions } : formatOrOptions;
    this.clock = this.options.clock ?? Date.now;
    this.limits = { ...PIPELINE_LIMITS, ...this.options.limits };
    const streamOptions = { ...DEFAULT_STREAM_OPTIONS, ...this.options.stream };
    this.ctx = {
      ingestor,
      counters: this.counters,
      options: streamOptions,
      budget: new TurnBudget(streamOptions.sliceMs),
      limiter: new Limiter(this.options.maxConcurrentReplays ?? 4),
      format: this.options.format ?? 'vllm',
      log,
      clock: this.clock,
    };
  }

  /**
   * Handles one received message. Returns a promise only when the receiving socket should pause because the
   * endpoint's stream is backed up (see EndpointStream.backpressure()).
   */
  handle(frames: readonly Uint8Array[], origin: MessageOrigin = BIND_ORIGIN): Promise<void> | undefined {
    this.counters.messages++;
    // Sizes first: a long topic is neither decoded nor kept (topic caches), a large payload not decoded.
    if (frames.length === 3 && frames[1].length === 8) {
      const topicBytes = frames[0].length;
      if (topicBytes > this.limits.maxTopicBytes) {
        const head = Buffer.from(frames[0].buffer, frames[0].byteOffset, Math.min(64, topicBytes)).toString('utf8');
        this.rejectTopic(
          `${head}… (${topicBytes} bytes)`,
          `topic of ${topicBytes} bytes is longer than zmq.maxTopicBytes (${this.limits.maxTopicBytes})`,
          origin,
        );
        return undefined;
      }
      if (frames[2].length > this.limits.maxPayloadBytes) {
        bump(this.counters.dropped, 'payload_too_large');
        this.counters.lostBatches++;
        return undefined;
      }
    }
    const parsed = parseLiveFrames(frames);
    if (!parsed.ok) {
      bump(this.counters.dropped, parsed.reason);
      return undefined;
    }
    const { topic, seq, payload } = parsed.message;
    let t = this.topics.get(topic);
    if (t === undefined) {
      if (this.topics.size >= 4096) this.topics.clear();
      this.topics.set(topic, (t = parseTopic(topic)));
      if (t.ok && this.publishedModels.size < MAX_PUBLISHED_MODELS) this.publishedModels.add(t.topic.model);
    }
    if (!t.ok) {
      this.rejectTopic(topic, t.reason, origin);
      return undefined;
    }
    let batch;
    try {
      batch = decodeEventBatch(payload, this.ctx.format);
    } catch (err) {
      if (!(err instanceof PayloadError)) throw err;
      bump(this.counters.decodeErrors, err.reason);
      this.counters.lostBatches++;
      return;
    }
    for (const issue of batch.issues) bump(this.counters.decodeErrors, issue.reason);
    if (batch.unlistedIssues)
      for (const [reason, n] of Object.entries(batch.unlistedIssues)) bump(this.counters.decodeErrors, reason, n);
    if (origin.expect && origin.expect !== t.topic.endpoint) this.mismatch(origin, t.topic.endpoint);
    // A socket bound to one rank's identity names it whatever the topic says: llm-d's per-rank publishers all share
    // the topic of rank 0 (`kv@<ip>:<port>@<model>`), so the topic cannot tell them apart (llm-d-router #2233).
    const rank = origin.identity ? (origin.rank ?? 0) : (batch.dataParallelRank ?? 0);
    const identity = origin.identity || rankIdentity(t.topic.endpoint, rank);
    let stream = this.streams.get(identity);
    if (!stream) {
      if (this.streams.size >= this.limits.maxEndpoints && !this.reclaimSlot()) {
        this.dropForCapacity(identity);
        return undefined;
      }
      const replay = origin.replay ?? this.options.resolveReplay?.(t.topic.endpoint, rank) ?? null;
      stream = new EndpointStream(
        identity,
        t.topic.endpoint,
        rank,
        replay,
        origin.source,
        this.ctx,
        origin.expect ?? null,
      );
      this.streams.set(identity, stream);
    } else if (origin.replay !== null && origin.replay !== stream.replayAddress) {
      stream.useReplayAddress(origin.replay); // the endpoint moved to a connection that names its replay ROUTER
    }
    let tally = this.tallies.get(identity);
    if (!tally) this.tallies.set(identity, (tally = newWireTally()));
    tallyBatch(tally, batch.events, batch.issues, batch.unlistedIssues);
    return stream.offer({ seq, ts: batch.ts, receivedAt: this.clock(), model: t.topic.model, events: batch.events })
      ? stream.backpressure()
      : undefined;
  }

  /** Endpoint identities with something applied, and their last sequence number. */
  endpoints(): Map<string, bigint> {
    const out = new Map<string, bigint>();
    for (const [id, s] of this.streams) if (s.last !== null) out.set(id, s.last);
    return out;
  }

  /** Whether any endpoint has published events for `model` (a valid topic naming it) since this process started. */
  hasPublished(model: string): boolean {
    return this.publishedModels.has(model);
  }

  stream(identity: string): EndpointStream | undefined {
    return this.streams.get(identity);
  }

  /** The per-endpoint figures of /metrics in one pass, without sorting or asking the index (16k endpoints: ~ms). */
  figures(): EndpointFigures[] {
    const now = this.clock();
    const out: EndpointFigures[] = [];
    for (const s of this.streams.values()) {
      const age = s.lastEventAt === 0 ? null : now - s.lastEventAt;
      const lagSeconds = Number.isFinite(s.lagTs) ? Math.max(0, now / 1000 - s.lagTs) : null;
      out.push({
        identity: s.identity,
        state: this.stateOf(s, age),
        applied: s.stats.applied,
        lagSeconds,
        lastEventAgeMs: age,
        queued: s.queued,
      });
    }
    return out;
  }

  private stateOf(s: EndpointStream, age: number | null): EndpointState {
    return age !== null && age > (this.options.staleMs ?? 60_000) ? 'stale' : s.degraded ? 'degraded' : 'live';
  }

  listEndpoints(): EndpointInfo[] {
    const now = this.clock();
    const out: EndpointInfo[] = [];
    for (const stream of this.streams.values()) {
      const s = stream.status();
      const age = s.lastEventAt === 0 ? null : now - s.lastEventAt;
      out.push({
        identity: s.identity,
        endpoint: s.endpoint,
        rank: s.rank,
        model: s.model,
        source: s.source,
        replayAddress: s.replayAddress,
        expectedEndpoint: s.expectedEndpoint,
        state: this.stateOf(stream, age),
        degradedReason: s.degradedReason,
        replaying: s.replaying,
        lastSeq: s.lastSeq,
        lastEventAgeMs: age,
        lagSeconds: Number.isFinite(s.lagTs) ? Math.max(0, now / 1000 - s.lagTs) : null,
        queued: s.queued,
        stats: s.stats,
        blocksByTier: this.options.blockCounts?.(s.identity) ?? {},
        engineKeys: this.ingestor.engineKeyCount(s.identity),
        wire: copyTally(this.tallies.get(s.identity)),
      });
    }
    return out.sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0));
  }

  /**
   * Clears and forgets every endpoint silent for longer than clearStaleMs (see retire()). Returns the identities
   * cleared. The service calls it periodically.
   */
  sweepStale(): string[] {
    const limit = this.options.clearStaleMs ?? 0;
    if (limit <= 0) return [];
    const now = this.clock();
    const cleared: string[] = [];
    for (const s of [...this.streams.values()]) {
      if (s.lastEventAt === 0 || now - s.lastEventAt <= limit || s.busy || s.replaying) continue;
      this.log.info(
        { endpoint: s.identity, silentSeconds: Math.round((now - s.lastEventAt) / 1000) },
        'stale endpoint cleared',
      );
      this.retire(s, 'stale');
      cleared.push(s.identity);
    }
    return cleared;
  }

  /**
   * Clears and forgets one stream now: its entries, its engine-key bridge, its endpoints.maxTracked slot and its
   * per-endpoint metric series (they are read from listEndpoints()). If it publishes again it is a new stream and
   * resynchronises (replay from 0 where it has a replay socket). Only called on an idle stream (nothing queued).
   */
  private retire(s: EndpointStream, reason: 'stale' | 'reclaimed'): void {
    this.streams.delete(s.identity);
    this.tallies.delete(s.identity); // forgotten with the stream, as remove() does (else churn grows the map)
    bump(this.counters.clears, reason);
    void s.close(); // idle: closing settles at once; the entries go now, below
    this.ingestor.forget(s.identity);
  }

  /**
   * At endpoints.maxTracked, a new identity takes the slot of the longest-silent stale one (silent past
   * endpoints.staleSeconds; pod churn in bind mode leaves such identities behind), whose entries are cleared
   * (`endpoint_clears_total{reason="reclaimed"}`). False when every tracked identity is live.
   */
  private reclaimSlot(): boolean {
    const staleMs = this.options.staleMs ?? 60_000;
    const now = this.clock();
    let oldest: EndpointStream | null = null;
    for (const s of this.streams.values()) {
      if (s.busy || s.replaying || s.lastEventAt === 0 || now - s.lastEventAt <= staleMs) continue;
      if (oldest === null || s.lastEventAt < oldest.lastEventAt) oldest = s;
    }
    if (oldest === null) return false;
    this.log.info(
      { endpoint: oldest.identity, silentSeconds: Math.round((now - oldest.lastEventAt) / 1000) },
      'endpoints.maxTracked reached: the longest-silent stale endpoint is cleared to make room',
    );
    this.retire(oldest, 'reclaimed');
    return true;
  }

  /** Counts a batch of an identity that found no slot; warns at most once per DROP_WARN_INTERVAL_MS, with the count. */
  private dropForCapacity(identity: string): void {
    bump(this.counters.dropped, 'too_many_endpoints');
    const now = this.clock();
    this.capacityDrops++;
    if (now - this.capacityWarnedAt < DROP_WARN_INTERVAL_MS) return;
    this.capacityWarnedAt = now;
    this.log.warn(
      {
        identity,
        maxEndpoints: this.limits.maxEndpoints,
        droppedSinceLastWarning: this.capacityDrops,
        droppedTotal: this.counters.dropped.too_many_endpoints,
      },
      'too many endpoints: batches of new endpoints are dropped (endpoints.maxTracked reached and no endpoint is stale)',
    );
    this.capacityDrops = 0;
  }

  /**
   * Clears an endpoint's entries and resynchronises it: its sequence state is dropped, so its next batch replays
   * from 0 (joined mid-stream) when a replay endpoint is known. Returns whether the identity was known. `reason` labels
   * the clear in endpoint_clears_total: `api` (ClearEndpoint), `resync` (the index lost writes), `lease_takeover`.
   */
  clearEndpoint(identity: string, reason: ClearReason = 'api'): boolean {
    const stream = this.streams.get(identity);
    if (stream) stream.resetForResync(reason);
    else this.ingestor.clear(identity);
    return stream !== undefined;
  }

  /** Counts a rejected topic; the first 1000 distinct ones are logged once and listed by rejectedTopics(). */
  private rejectTopic(topic: string, reason: string, origin: MessageOrigin): void {
    const seen = this.badTopics.get(topic);
    if (seen === undefined && this.badTopics.size < 1000) {
      this.log.warn({ topic, source: origin.source }, reason);
      this.badTopics.set(topic, 1);
    } else if (seen !== undefined) this.badTopics.set(topic, seen + 1);
    bump(this.counters.dropped, 'bad_topic');
  }

  /** Topics rejected so far (a misconfigured publisher, e.g. `kv@<ip>@model` without the port) and their counts. */
  rejectedTopics(): Map<string, number> {
    return new Map(this.badTopics);
  }

  /** Resolves once every stream's queue is empty and no replay runs. */
  async idle(): Promise<void> {
    for (;;) {
      const busy = [...this.streams.values()].filter((s) => s.busy);
      if (busy.length === 0) return;
      await Promise.all(busy.map((s) => s.idle()));
    }
  }

  /**
   * Clears and resynchronises the streams chosen by `which` (a publisher that moved to new sockets: a new engine
   * process, so its old cache is gone). Returns the identities cleared.
   */
  resetWhere(which: (info: { identity: string; source: string; rank: number }) => boolean, reason: 'moved'): string[] {
    const reset: string[] = [];
    for (const s of this.streams.values()) {
      if (!which(s)) continue;
      s.resetForResync(reason);
      reset.push(s.identity);
    }
    return reset;
  }

  /**
   * Stops and forgets the matching streams. Their index entries are cleared, unless `keepEntries` (a handover: another
   * replica sharing the index now maintains them).
   */
  async remove(
    which: (info: { identity: string; source: string; endpoint: string; rank: number }) => boolean,
    options: { keepEntries?: boolean } = {},
  ): Promise<string[]> {
    const removed: string[] = [];
    for (const s of [...this.streams.values()]) {
      if (!which(s)) continue;
      this.streams.delete(s.identity);
      this.tallies.delete(s.identity);
      await s.close();
      if (options.keepEntries) this.ingestor.handOver(s.identity);
      else {
        bump(this.counters.clears, 'removed');
        this.ingestor.forget(s.identity);
      }
      removed.push(s.identity);
    }
    return removed;
  }

  async close(): Promise<void> {
    await Promise.all([...this.streams.values()].map((s) => s.close()));
  }

  /** A connect-mode endpoint whose topic names another identity than configured: the picker's scores would be 0. */
  private mismatch(origin: MessageOrigin, named: string): void {
    this.counters.identityMismatches++;
    const key = `${origin.source} ${named}`;
    if (!this.mismatchLogged.has(key) && this.mismatchLogged.size < 1000) {
      this.mismatchLogged.add(key);
      this.log.warn(
        { source: origin.source, expected: origin.expect, topicEndpoint: named },
        'endpoint identity mismatch: the topic names another endpoint than configured',
      );
    }
  }
}
