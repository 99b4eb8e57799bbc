import { encode } from '@msgpack/msgpack';
import { Publisher } from 'zeromq';

/** Big-endian 8-byte sequence frame. */
export function seqFrame(seq: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(seq));
  return b;
}

/** Polls `done` every 10 ms until it holds or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(done: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A PUB socket connected to `address`, returned once a probe message is known to arrive (ZMQ drops what a PUB sends
 * before the subscription reaches it). `arrived()` must report whether the subscriber saw a probe.
 */
export async function connectedPublisher(address: string, probe: Buffer[], arrived: () => boolean): Promise<Publisher> {
  const pub = new Publisher();
  pub.connect(address);
  const deadline = Date.now() + 5_000;
  while (!arrived()) {
    if (Date.now() > deadline) throw new Error(`publisher never reached ${address}`);
    await pub.send(probe);
    await new Promise((r) => setTimeout(r, 20));
  }
  return pub;
}

/** A live 3-frame KV-event message: topic, big-endian sequence, msgpack payload (64-bit ints from bigint). */
export function kvMessage(topic: string, seq: number, payload: unknown): Buffer[] {
  return [Buffer.from(topic), seqFrame(seq), Buffer.from(encode(payload, { useBigInt64: true }))];
}

/** Token ids from..from+n-1. */
export function tokenRange(n: number, from = 1): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}
