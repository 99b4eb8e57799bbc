/**
 * The one key mix of the open-addressing tables, and the seed it is keyed with.
 *
 * Table keys are engine block hashes and request keys, and a publisher chooses its engine hashes: with a fixed mix, a
 * hostile publisher could send keys that share a home slot and turn every probe into a scan of one long run. The mix
 * is therefore keyed by a seed drawn once per process from the OS random source, which the publisher cannot see.
 * Tests that need slot positions to be reproducible pass a seed to the table or fix the process seed.
 */

import { randomBytes } from 'node:crypto';

/**
 * Mixes a uint64 key (two uint32 halves) with a 32-bit seed into 32 well-spread bits (murmur3-style finaliser over
 * both halves). Callers take low bits for a shard and the bits above for a home slot.
 */
export function mixKey(lo: number, hi: number, seed: number): number {
  let h = Math.imul(lo ^ seed, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16) ^ hi, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

let processSeed = randomBytes(4).readUInt32LE(0);

/** The seed tables use when none is given: random per process unless fixed with fixTableSeed(). */
export function tableSeed(): number {
  return processSeed;
}

/**
 * Fixes the seed of tables created from now on (tests and benchmarks that compare slot layouts across runs); without
 * an argument, draws a fresh random one. Existing tables keep the seed they were built with.
 */
export function fixTableSeed(seed: number = randomBytes(4).readUInt32LE(0)): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`table seed must be an integer in [0, 2^32), got ${seed}`);
  }
  processSeed = seed >>> 0;
}
