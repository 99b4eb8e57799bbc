/**
 * Key names and placement of the Redis index. Every key of the index carries a hash tag: `<prefix>{<tag>}...`.
 *
 * - placement 'single': one tag ("0") for every block — all index keys in one slot. Right for a single server; on a
 *   cluster it works but puts the whole index on one master.
 * - placement 'anchor': the tag is derived from the chain's anchor, the request key of its block 0, folded onto
 *   `tagCount` tags. A prompt's whole chain therefore lives in one slot (one script per lookup, no CROSSSLOT), while
 *   different prefixes spread over the cluster's masters. Writers must pass the anchor with add/remove; a lookup
 *   uses its own keys[0].
 * The registry (endpoint and tier ids, tags in use) lives under the tag "m".
 */

export type Placement = 'single' | 'anchor';

export const SINGLE_TAG = '0';
export const DEFAULT_TAG_COUNT = 1024;
/** Hashes an endpoint's key set is spread over, in all tags together (see scripts.ts). */
export const DEFAULT_ENDPOINT_BUCKETS = 4096;

export class KeySchema {
  /** Buckets of an endpoint's key set within one tag. */
  readonly endpointBuckets: number;

  constructor(
    readonly prefix: string,
    readonly placement: Placement,
    readonly tagCount: number = DEFAULT_TAG_COUNT,
    endpointBuckets: number = DEFAULT_ENDPOINT_BUCKETS,
  ) {
    if (placement !== 'single' && placement !== 'anchor') {
      throw new RangeError(`placement must be 'single' or 'anchor', got ${String(placement)}`);
    }
    if (/[{}]/.test(prefix)) throw new RangeError(`key prefix must not contain '{' or '}' (hash tags), got ${prefix}`);
    if (!Number.isInteger(tagCount) || tagCount < 1 || tagCount > 65_536) {
      throw new RangeError(`tagCount must be an integer in [1, 65536], got ${tagCount}`);
    }
    if (!Number.isInteger(endpointBuckets) || endpointBuckets < 1 || endpointBuckets > 1 << 20) {
      throw new RangeError(`endpointBuckets must be an integer in [1, 2^20], got ${endpointBuckets}`);
    }
    // Under placement anchor an endpoint's keys are already spread over tagCount tags.
    this.endpointBuckets =
      placement === 'single' ? endpointBuckets : Math.max(1, Math.ceil(endpointBuckets / tagCount));
  }

  /** The tag of a chain whose block 0 has this request key. */
  tagOf(anchor: bigint | undefined): string {
    if (this.placement === 'single' || anchor === undefined) return SINGLE_TAG;
    const lo = Number(anchor & 0xffffffffn);
    const hi = Number((anchor >> 32n) & 0xffffffffn);
    // Fold both halves, then mix so that nearby anchors still land on different tags.
    const x = Math.imul((lo ^ hi) >>> 0, 0x9e3779b1) >>> 0;
    return `t${(x % this.tagCount).toString(36)}`;
  }

  /** Tag of a lookup or reservation whose first key is keys[0]. */
  tagOfKeys(keys: BigUint64Array): string {
    return this.placement === 'single' || keys.length === 0 ? SINGLE_TAG : this.tagOf(keys[0]);
  }

  /** `<prefix>{<tag>}`: what the scripts prepend to their derived key names. */
  tagPrefix(tag: string): string {
    return `${this.prefix}{${tag}}`;
  }

  counters(tag: string): string {
    return `${this.tagPrefix(tag)}n`;
  }

  /** The block hash of one raw 8-byte key (as the scripts name it). */
  block(tag: string, raw: Uint8Array): Buffer {
    return Buffer.concat([Buffer.from(`${this.tagPrefix(tag)}b`), raw]);
  }

  /** Registry keys (slot of tag "m"). */
  meta(name: 'eid' | 'ename' | 'tid' | 'tname' | 'tags' | 'gen'): string {
    return `${this.prefix}{m}${name}`;
  }

  /** Tags in which an endpoint has (or had) entries — what clearEndpoint must visit under anchor placement. */
  endpointTags(eid: number): string {
    return `${this.prefix}{m}et${eid}`;
  }
}
