/** Encoding of LOOKUP arguments and decoding of the scripts' replies into the Index's result types. */

import type { TierRegistry } from '../tiers.js';
import type { PrefixMatch } from '../types.js';
import type { RegistryClient, SharedIds } from './shared-ids.js';

const HIGH_TIERS = 0x3fffff00;

/** LOOKUP's ARGV: tag prefix, now, the keys as one string of 8-byte raw keys (no copy), candidate ids. */
export function lookupArgs(
  tagPrefix: string,
  now: number,
  keys: BigUint64Array,
  eids: readonly number[] | undefined,
): { first: Buffer; argv: (string | Buffer | number)[] } {
  const raw = Buffer.from(keys.buffer, keys.byteOffset, keys.length * 8);
  const argv: (string | Buffer | number)[] = [tagPrefix, now, raw];
  if (eids) for (const id of eids) argv.push(String(id));
  return { first: raw.subarray(0, 8), argv };
}

/** LOOKUP rows {eid, mask0, mask1, ...} → PrefixMatch[] sorted longest first (ties: candidate order, or by name). */
export async function parseMatches(
  reply: unknown[],
  ids: SharedIds,
  client: RegistryClient,
  byName: boolean,
): Promise<PrefixMatch[]> {
  const rows = reply as [string | number, ...number[]][];
  const eids = rows.map((r) => Number(r[0]));
  await ids.findEndpointNames(
    client,
    eids.filter((id) => ids.endpointName(id) === undefined),
  );
  const highTiers: number[] = [];
  for (const r of rows) {
    for (let i = 1; i < r.length; i++) {
      const m = Number(r[i]);
      if ((m & HIGH_TIERS) !== 0) for (let t = 8; t < 30; t++) if ((m & (1 << t)) !== 0) highTiers.push(t);
    }
  }
  if (highTiers.length > 0) await ids.findTiers(client, highTiers);
  const out: PrefixMatch[] = [];
  rows.forEach((r, i) => {
    const endpoint = ids.endpointName(eids[i]);
    if (endpoint === undefined) return;
    const masks = new Uint32Array(r.length - 1);
    for (let b = 1; b < r.length; b++) masks[b - 1] = ids.toLocalMask(Number(r[b]));
    out.push({ endpoint, matchedBlocks: masks.length, tierMasks: masks });
  });
  out.sort((a, b) => b.matchedBlocks - a.matchedBlocks || (byName ? (a.endpoint < b.endpoint ? -1 : 1) : 0));
  return out;
}

export interface TagCounters {
  swept: number;
  /** HGETALL of the tag's counters hash: [field, value, field, value, ...]. */
  fields: string[];
}

export interface MergedCounters {
  entries: number;
  keys: number;
  spec: number;
  expired: number;
  /** endpoint id → tier name → entries (speculative ones under GPU), endpoints with entries only. */
  perEndpoint: Map<number, Record<string, number>>;
}

export async function mergeCounters(
  tags: readonly TagCounters[],
  ids: SharedIds,
  client: RegistryClient,
  tiers: TierRegistry,
): Promise<MergedCounters> {
  const out: MergedCounters = { entries: 0, keys: 0, spec: 0, expired: 0, perEndpoint: new Map() };
  const perTier: [number, string, number][] = [];
  for (const { fields } of tags) {
    for (let i = 0; i < fields.length; i += 2) {
      const f = fields[i];
      const v = Number(fields[i + 1]);
      const dot = f.indexOf('.');
      if (dot < 0) {
        if (f === 'entries' || f === 'keys' || f === 'spec' || f === 'expired') out[f] += v;
      } else if (v > 0) {
        perTier.push([Number(f.slice(0, dot)), f.slice(dot + 1), v]);
      }
    }
  }
  const high = perTier.map(([, t]) => (t === 's' ? 0 : Number(t))).filter((t) => t >= 8);
  if (high.length > 0) await ids.findTiers(client, high);
  for (const [eid, t, v] of perTier) {
    const local = t === 's' ? 0 : ids.localTier(Number(t));
    if (local === undefined) continue;
    const name = tiers.name(local);
    let rec = out.perEndpoint.get(eid);
    if (!rec) out.perEndpoint.set(eid, (rec = {}));
    rec[name] = (rec[name] ?? 0) + v;
  }
  return out;
}
