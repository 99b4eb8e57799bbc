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

/** `waitFor` for a condition that must be asked over the network (gRPC): polled every 20 ms until it holds. */
export async function waitForAsync(done: () => Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What the helpers below need of a kvindexer.v1 client (test/support/grpc-client.ts). */
interface KvCaller {
  call(method: string, req: object): Promise<any>;
}

/** Index entries of `endpoint` over all tiers, as ListEndpoints reports them (whichever thread holds the index). */
export async function entriesOf(kv: KvCaller, endpoint: string): Promise<number> {
  const listed = (await kv.call('ListEndpoints', {})).endpoints as {
    endpoint: string;
    blocksByTier: Record<string, string>;
  }[];
  const row = listed.find((e) => e.endpoint === endpoint);
  return row ? Object.values(row.blocksByTier).reduce((a, n) => a + Number(n), 0) : 0;
}

/**
 * A PUB socket connected to the service's ZMQ `address`, returned once its probe shows up in ListEndpoints: ZMQ drops
 * what a PUB sends before the subscription reaches it. Asked over gRPC, so it works with the index thread too.
 */
export async function publisherSeenByApi(address: string, kv: KvCaller): Promise<Publisher> {
  const pub = new Publisher();
  pub.connect(address);
  await waitForAsync(async () => {
    await pub.send(kvMessage('kv@10.9.9.9:1@probe', 0, [0, [], null]));
    const listed = (await kv.call('ListEndpoints', {})).endpoints as { endpoint: string }[];
    return listed.some((e) => e.endpoint === '10.9.9.9:1');
  }, `a publisher to reach ${address}`);
  return pub;
}
