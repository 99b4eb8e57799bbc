/**
 * Longest consecutive prefix per endpoint, walking the query's keys from block 0 and stopping as soon as no endpoint
 * is still matching. Scratch state lives in typed arrays reused across calls (indexed by endpoint id or by "row", one
 * row per endpoint taking part in this lookup); a call allocates only the key view and its results.
 */

import { GPU_TIER, SPECULATIVE_BIT } from '../tiers.js';
import type { MatchRows } from '../match-rows.js';
import type { PrefixMatch } from '../types.js';
import type { EndpointRegistry } from './endpoint-registry.js';
import { ENTRY_LAYOUT } from './entry-pool.js';
import type { EntryStore } from './entry-store.js';

const {
  CHUNK_MASK,
  CHUNK_SHIFT,
  ENDPOINT_MASK,
  ENTRY_WORDS,
  FLAG_SPECULATIVE,
  META,
  NEXT_FOR_KEY,
  TIER_MASK,
  TIER_SHIFT,
} = ENTRY_LAYOUT;

/** Blocks whose heads are fetched together; bounds the probes wasted when the walk stops early. */
const BATCH = 16;
const SPECULATIVE_MASK = ((1 << GPU_TIER) | SPECULATIVE_BIT) >>> 0;

export class PrefixWalker {
  /** Endpoint id → row + 1 while the endpoint is still matching, else 0. */
  private rowOf = new Int32Array(16);
  /** Row → endpoint id. */
  private rowIds = new Uint32Array(16);
  /** Rows still matching (unordered). */
  private aliveRows = new Uint32Array(16);
  /** Row → tier mask for the current block. */
  private acc = new Uint32Array(16);
  /** Row → blocks matched so far. */
  private matched = new Uint32Array(16);
  /** Row-major masks: row r, block b at r * blocks + b. */
  private masks = new Uint32Array(4096);
  private readonly heads = new Uint32Array(BATCH);

  constructor(
    private readonly store: EntryStore,
    private readonly endpoints: EndpointRegistry,
  ) {}

  lookup(
    keys: BigUint64Array,
    candidates: readonly string[] | undefined,
    maxBlocks: number,
    now: number,
  ): PrefixMatch[] {
    const blocks = Math.min(keys.length, maxBlocks);
    const rows = this.walk(keys, candidates, blocks, now, null);
    return rows === 0 ? [] : this.collect(rows, blocks, candidates === undefined);
  }

  /** The same walk as lookup(), its rows copied into `into` (MatchRows) instead of PrefixMatch objects. */
  lookupRows(
    keys: BigUint64Array,
    candidates: readonly string[] | undefined,
    maxBlocks: number,
    now: number,
    into: MatchRows,
  ): void {
    const blocks = Math.min(keys.length, maxBlocks);
    into.begin(candidates?.length ?? 0);
    const rows = this.walk(keys, candidates, blocks, now, into.candidateRow);
    if (rows > 0) this.fill(rows, blocks, into);
  }

  /**
   * Walks the blocks; returns the rows taking part (their state left in the scratch arrays for collect/fill). With
   * `candidateRow`, records each candidate's row (-1 stays for names the registry does not know).
   */
  private walk(
    keys: BigUint64Array,
    candidates: readonly string[] | undefined,
    blocks: number,
    now: number,
    candidateRow: Int32Array | null,
  ): number {
    if (blocks === 0) return 0;
    this.ensureRows(Math.max(this.endpoints.idBound, candidates?.length ?? 0));
    const { rowOf, rowIds, aliveRows, acc, matched } = this;
    let rows = 0;
    if (candidates !== undefined) {
      for (let i = 0; i < candidates.length; i++) {
        const id = this.endpoints.find(candidates[i]);
        if (id === undefined) continue;
        if (rowOf[id] !== 0) {
          if (candidateRow !== null) candidateRow[i] = rowOf[id] - 1;
          continue;
        }
        rowIds[rows] = id;
        aliveRows[rows] = rows;
        if (candidateRow !== null) candidateRow[i] = rows;
        rowOf[id] = ++rows;
      }
      if (rows === 0) return 0;
      this.ensureMasks(rows * blocks);
    }
    const collect = candidates === undefined;
    const words = new Uint32Array(keys.buffer, keys.byteOffset, blocks * 2);
    const table = this.store.table;
    const expiry = this.store.expiry;
    const chunks = this.store.pool.chunks;
    let masks = this.masks;
    const heads = this.heads;
    let alive = rows;
    for (let blk = 0; blk < blocks; blk++) {
      const slot = blk % BATCH;
      if (slot === 0) table.heads(words, blk, Math.min(blk + BATCH, blocks), heads);
      let e = heads[slot];
      if (e === 0) break;
      const joining = collect && blk === 0;
      while (e !== 0) {
        const c = chunks[e >>> CHUNK_SHIFT];
        const o = (e & CHUNK_MASK) * ENTRY_WORDS;
        const meta = c[o + META];
        const id = meta & ENDPOINT_MASK;
        let r = rowOf[id];
        if (r !== 0 || joining) {
          let bit: number;
          if ((meta & FLAG_SPECULATIVE) === 0) bit = 1 << ((meta >>> TIER_SHIFT) & TIER_MASK);
          else if ((expiry.get(e) as number) > now) bit = SPECULATIVE_MASK;
          else bit = 0;
          if (bit !== 0) {
            if (r === 0) {
              rowIds[rows] = id;
              aliveRows[rows] = rows;
              rowOf[id] = r = ++rows;
              alive++;
            }
            acc[r - 1] |= bit;
          }
        }
        e = c[o + NEXT_FOR_KEY];
      }
      if (joining) {
        if (rows === 0) break;
        masks = this.ensureMasks(rows * blocks);
      }
      for (let i = 0; i < alive;) {
        const r = aliveRows[i];
        const m = acc[r];
        if (m === 0) {
          rowOf[rowIds[r]] = 0;
          aliveRows[i] = aliveRows[--alive];
          continue;
        }
        acc[r] = 0;
        masks[r * blocks + blk] = m;
        matched[r] = blk + 1;
        i++;
      }
      if (alive === 0) break;
    }
    return rows;
  }

  get bytes(): number {
    return (
      this.rowOf.byteLength +
      this.rowIds.byteLength +
      this.aliveRows.byteLength +
      this.acc.byteLength +
      this.matched.byteLength +
      this.masks.byteLength +
      this.heads.byteLength
    );
  }

  /** Builds the results (one shared buffer for every tierMasks) and resets the scratch rows. */
  private collect(rows: number, blocks: number, byName: boolean): PrefixMatch[] {
    const { rowOf, rowIds, acc, matched, masks } = this;
    let total = 0;
    for (let r = 0; r < rows; r++) total += matched[r];
    const buffer = new Uint32Array(total);
    const out: PrefixMatch[] = [];
    let off = 0;
    for (let r = 0; r < rows; r++) {
      const id = rowIds[r];
      rowOf[id] = 0;
      acc[r] = 0;
      const m = matched[r];
      if (m === 0) continue;
      matched[r] = 0;
      const from = r * blocks;
      for (let i = 0; i < m; i++) buffer[off + i] = masks[from + i];
      out.push({ endpoint: this.endpoints.name(id), matchedBlocks: m, tierMasks: buffer.subarray(off, off + m) });
      off += m;
    }
    // Longest first; ties in candidate order, or by endpoint name when no candidates were given.
    out.sort((a, b) => b.matchedBlocks - a.matchedBlocks || (byName ? (a.endpoint < b.endpoint ? -1 : 1) : 0));
    return out;
  }

  /** Copies the rows into `into` and resets the scratch rows, as collect() does. */
  private fill(rows: number, blocks: number, into: MatchRows): void {
    const { rowOf, rowIds, acc, matched, masks } = this;
    into.reserve(rows, blocks);
    const out = into.masks;
    for (let r = 0; r < rows; r++) {
      const id = rowIds[r];
      rowOf[id] = 0;
      acc[r] = 0;
      const m = matched[r];
      matched[r] = 0;
      into.endpoints[r] = this.endpoints.name(id);
      into.matched[r] = m;
      const from = r * blocks;
      for (let i = from; i < from + m; i++) out[i] = masks[i];
    }
    into.count = rows;
  }

  private ensureRows(n: number): void {
    if (n <= this.rowOf.length) return;
    let len = this.rowOf.length;
    while (len < n) len *= 2;
    this.rowOf = new Int32Array(len);
    this.rowIds = new Uint32Array(len);
    this.aliveRows = new Uint32Array(len);
    this.acc = new Uint32Array(len);
    this.matched = new Uint32Array(len);
  }

  private ensureMasks(n: number): Uint32Array<ArrayBuffer> {
    if (n > this.masks.length) {
      let len = this.masks.length;
      while (len < n) len *= 2;
      this.masks = new Uint32Array(len);
    }
    return this.masks;
  }
}
