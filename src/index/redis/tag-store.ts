/**
 * The index's script calls, one hash tag at a time: a batch of buffered writes becomes the APPLYs of the tags it
 * touches, sent together (several per tag above maxKeysPerScript); counters are read by one STATS per tag; names and
 * (endpoint, tag) pairs are registered by PREPARE in the registry slot. Callers handle errors (resync marking,
 * IndexUnavailableError).
 */

import type { KeySchema } from './key-schema.js';
import { SINGLE_TAG } from './key-schema.js';
import type { RedisArg, RedisConnection } from './redis-client.js';
import type { TagCounters } from './replies.js';
import type { SharedIds } from './shared-ids.js';
import type { Anchors, WriteOp } from './write-buffer.js';

export class TagStore {
  /** "<endpoint>\0<tag>" pairs known to be in the registry (placement 'anchor'). */
  private readonly registered = new Set<string>();
  /** Called with the registry generation PREPARE saw, before its ids are learnt (RedisIndex compares it). */
  onGeneration: (generation: string) => void = () => undefined;

  constructor(
    private readonly conn: RedisConnection,
    private readonly schema: KeySchema,
    private readonly ids: SharedIds,
    private readonly entryTtlMs: number,
    private readonly sweepBatch: number,
    private readonly maxKeysPerScript: number,
  ) {}

  /** Applies a batch in call order within each tag; returns the removes of entries that did not exist. */
  async applyBatch(ops: readonly WriteOp[], now: number): Promise<number> {
    const anchored = this.schema.placement === 'anchor';
    const endpoints = [...new Set(ops.map((o) => o.endpoint))];
    const pairs: [string, string][] = [];
    if (anchored) {
      for (const o of ops) if (o.kind === 'a') for (const tag of this.tagsOf(o.anchor)) pairs.push([o.endpoint, tag]);
    }
    const clears = anchored ? [...new Set(ops.filter((o) => o.kind === 'c').map((o) => o.endpoint))] : [];
    const tiers = ops.flatMap((o) => (o.kind === 'c' ? [] : [o.tier]));
    // Ids must be known (and a clear's tags read) before APPLY; registering new (endpoint, tag) pairs only matters
    // to later clears, which flush after this one completes, so it travels with the APPLYs when nothing else is due.
    const idsKnown = this.ids.unknownEndpoints(endpoints).length === 0 && this.ids.unknownTiers(tiers).length === 0;
    const late = idsKnown && clears.length === 0 ? pairs : [];
    const clearTags =
      late.length > 0 ? new Map<string, string[]>() : await this.prepare(endpoints, tiers, pairs, clears);
    const calls = new ScriptCalls(this.maxKeysPerScript);
    for (const o of ops) {
      const eid = String(this.ids.endpointId(o.endpoint));
      if (o.kind === 'c') {
        for (const tag of anchored ? (clearTags.get(o.endpoint) ?? []) : [SINGLE_TAG]) calls.clear(tag, eid);
      } else {
        const tid = this.ids.tierId(o.tier) as number;
        for (const [tag, raw] of this.splitByTag(o.keys, o.anchor)) calls.write(tag, o.kind, eid, tid, raw);
      }
    }
    const registering = late.length > 0 ? this.prepare([], [], late, []) : undefined;
    // Calls of one tag go to one master over one connection: they run in order, and other clients' commands (a
    // lookup) can run between them instead of waiting for one long script.
    const applying = Promise.all(calls.all().map(([tag, argv]) => this.applyTag(tag, now, argv)));
    const [results] = await Promise.all([applying, registering]);
    let unknown = 0;
    for (const [u] of results) unknown += u;
    return unknown;
  }

  /** The distinct tags of a write's anchors. */
  private tagsOf(anchor: Anchors): string[] {
    if (!(anchor instanceof BigUint64Array)) return [this.schema.tagOf(anchor)];
    const tags = new Set<string>();
    for (const a of anchor) tags.add(this.schema.tagOf(a));
    return [...tags];
  }

  /** A write's raw keys per tag, in their order (one slice without copying when all share a tag). */
  private splitByTag(keys: Uint8Array, anchor: Anchors): [string, Buffer][] {
    const whole = Buffer.from(keys.buffer, keys.byteOffset, keys.byteLength);
    if (!(anchor instanceof BigUint64Array)) return [[this.schema.tagOf(anchor), whole]];
    if (this.schema.placement === 'single') return [[this.schema.tagOf(undefined), whole]];
    const byTag = new Map<string, number[]>();
    anchor.forEach((a, i) => {
      const tag = this.schema.tagOf(a);
      const list = byTag.get(tag);
      if (list) list.push(i);
      else byTag.set(tag, [i]);
    });
    if (byTag.size === 1) return [[byTag.keys().next().value as string, whole]];
    return [...byTag].map(([tag, idx]) => {
      const out = Buffer.allocUnsafe(idx.length * 8);
      idx.forEach((k, j) => whole.copy(out, j * 8, k * 8, k * 8 + 8));
      return [tag, out];
    });
  }

  /** One APPLY on a tag: [removesOfUnknown, released (not expired), expiredSwept]. sweep = false for releases. */
  async applyTag(tag: string, now: number, argv: RedisArg[], sweep = true): Promise<[number, number, number]> {
    const limit = sweep ? this.sweepBatch : 0;
    const tp = this.schema.tagPrefix(tag);
    const eb = this.schema.endpointBuckets;
    const key = this.schema.counters(tag);
    const reply = (await this.conn.script('kviApply', key, tp, now, eb, this.entryTtlMs, limit, ...argv)) as number[];
    return [Number(reply[0]), Number(reply[1]), Number(reply[2])];
  }

  /** Registers unknown names and new (endpoint, tag) pairs; returns the tags each cleared endpoint must visit. */
  async prepare(
    endpoints: readonly string[],
    tierNames: readonly string[],
    pairs: readonly [string, string][],
    clears: readonly string[],
  ): Promise<Map<string, string[]>> {
    const es = this.ids.unknownEndpoints(endpoints);
    const ts = this.ids.unknownTiers(tierNames);
    const fresh = [...new Map(pairs.map((p) => [`${p[0]}\0${p[1]}`, p])).entries()].filter(
      ([k]) => !this.registered.has(k),
    );
    const out = new Map<string, string[]>();
    if (es.length === 0 && ts.length === 0 && fresh.length === 0 && clears.length === 0) return out;
    const argv = [this.schema.prefix, es.length, ts.length, fresh.length, clears.length, Date.now()].map(String);
    argv.push(...es, ...ts);
    for (const [, [e, tag]] of fresh) argv.push(e, tag);
    argv.push(...clears);
    const reply = (await this.conn.script('kviPrepare', this.schema.meta('eid'), ...argv)) as unknown[];
    this.onGeneration(String(reply[reply.length - 1]));
    this.ids.learn(es, ts, reply[0] as number[]);
    for (const [k] of fresh) this.registered.add(k);
    clears.forEach((e, i) => out.set(e, reply[i + 1] as string[]));
    return out;
  }

  /** Every tag holding index keys (one under placement 'single'). */
  async allTags(): Promise<string[]> {
    return this.schema.placement === 'single' ? [SINGLE_TAG] : this.conn.smembers(this.schema.meta('tags'));
  }

  /** Tags in which an endpoint has entries. */
  async endpointTags(eid: number): Promise<string[]> {
    return this.schema.placement === 'single' ? [SINGLE_TAG] : this.conn.smembers(this.schema.endpointTags(eid));
  }

  /** STATS on each tag (sweeping speculative entries expired at now first). */
  async counters(tags: readonly string[], now: number): Promise<TagCounters[]> {
    return Promise.all(
      tags.map(async (tag) => {
        const tp = this.schema.tagPrefix(tag);
        const eb = this.schema.endpointBuckets;
        const reply = (await this.conn.script('kviStats', this.schema.counters(tag), tp, now, eb)) as [
          number,
          string[],
        ];
        return { swept: Number(reply[0]), fields: reply[1] };
      }),
    );
  }

  /** The Redis data was lost: registrations must be made again. */
  reset(): void {
    this.registered.clear();
  }
}

/** APPLY argument lists per tag, each with at most maxKeys keys (a clear counts as one). */
class ScriptCalls {
  private readonly byTag = new Map<string, { calls: RedisArg[][]; keys: number }>();

  constructor(private readonly maxKeys: number) {}

  clear(tag: string, eid: string): void {
    this.room(tag, 1).push('c', eid);
  }

  write(tag: string, kind: 'a' | 'r', eid: string, tid: number, raw: Buffer): void {
    for (let off = 0; off < raw.length;) {
      const state = this.state(tag);
      if (state.keys >= this.maxKeys) this.startCall(state);
      const n = Math.min((raw.length - off) / 8, this.maxKeys - state.keys);
      state.calls[state.calls.length - 1].push(kind, eid, tid, raw.subarray(off, off + n * 8));
      state.keys += n;
      off += n * 8;
    }
  }

  all(): [string, RedisArg[]][] {
    const out: [string, RedisArg[]][] = [];
    for (const [tag, { calls }] of this.byTag) for (const argv of calls) out.push([tag, argv]);
    return out;
  }

  private room(tag: string, keys: number): RedisArg[] {
    const state = this.state(tag);
    if (state.keys + keys > this.maxKeys && state.keys > 0) this.startCall(state);
    state.keys += keys;
    return state.calls[state.calls.length - 1];
  }

  private state(tag: string): { calls: RedisArg[][]; keys: number } {
    let s = this.byTag.get(tag);
    if (!s) this.byTag.set(tag, (s = { calls: [[]], keys: 0 }));
    return s;
  }

  private startCall(state: { calls: RedisArg[][]; keys: number }): void {
    state.calls.push([]);
    state.keys = 0;
  }
}
