// ZMQ feeder of the grpc-threads benchmark: a CHILD PROCESS that publishes vLLM KV events to the service's bound SUB
// socket, as a fleet of vLLM pods would (connect-side PUB, topic `kv@<endpoint>@model`, 8-byte big-endian sequence
// per topic, msgpack batches `[ts, events, dp_rank]` with array-encoded events). Plain JS, started with
// child_process.fork and driven over its IPC channel, so that its CPU is its own and not the measured process's.
//
// Messages from the parent:
//   setup    {address, endpoints, prompts, tokenPool, residentBlocks, blocksPerSecond, seed}: connects, pre-encodes
//   probe    sends a probe batch (no events) on a topic of its own every 20 ms until `probeStop` (slow joiner)
//   resident publishes every resident prompt as one BlockStored (64 blocks) on each of its 4 endpoints
//   fill     publishes background stores until `residentBlocks` background blocks are held
//   start    background ingest at `blocksPerSecond`: every 10 ms the stores due by then (16 blocks each, each evicting
//            the oldest 16 of its endpoint with a BlockRemoved), batched per endpoint into one message
//   count    the background blocks stored so far (to measure the rate over a window), with this process's CPU
//   stop     stops the background ingest; replies with what it published and how late its timer ran
//   burst    {blocks}: publishes that many background blocks (stores with their evictions) as fast as it can, in
//            rounds of 256 stores, yielding between rounds (the paced ingest must be stopped): ingest capacity
//   exit     closes the socket and exits
//
// Everything is encoded by hand into preallocated bytes (no msgpack library, no BigInt per hash): a removal copies
// the encoded hashes its store wrote into the ring, so the feeder's own cost stays a few % of a core.
import { Publisher } from 'zeromq';

/** xorshift32, seeded (deterministic runs). */
function xorshift(seed) {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** msgpack array header (fixarray / array16 / array32). */
function arrayHeader(n) {
  if (n < 16) return Buffer.from([0x90 | n]);
  if (n < 65536) return Buffer.from([0xdc, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}

function str(s) {
  const bytes = Buffer.from(s);
  if (bytes.length >= 32) throw new Error('feeder: short strings only');
  return Buffer.concat([Buffer.from([0xa0 | bytes.length]), bytes]);
}

/** A list of unsigned token ids, msgpack. */
function encodeTokens(tokens) {
  const out = [arrayHeader(tokens.length)];
  const b = Buffer.alloc(tokens.length * 5);
  let at = 0;
  for (const v of tokens) {
    if (v < 128) {
      b[at++] = v;
    } else if (v < 256) {
      b[at++] = 0xcc;
      b[at++] = v;
    } else if (v < 65536) {
      b[at++] = 0xcd;
      b.writeUInt16BE(v, at);
      at += 2;
    } else {
      b[at++] = 0xce;
      b.writeUInt32BE(v, at);
      at += 4;
    }
  }
  out.push(b.subarray(0, at));
  return Buffer.concat(out);
}

/** Bytes of `n` uint64 hashes (array16 of 0xcf + 8 bytes), random words from `next`. */
const hashesBytes = (n) => 3 + n * 9;
function writeHashes(out, at, n, next) {
  out[at] = 0xdc;
  out.writeUInt16BE(n, at + 1);
  let p = at + 3;
  for (let i = 0; i < n; i++) {
    out[p] = 0xcf;
    out.writeUInt32BE(next(), p + 1);
    out.writeUInt32BE(next(), p + 5);
    p += 9;
  }
  return p;
}

// ['BlockStored', block_hashes, parent_block_hash, token_ids, block_size, lora_id, medium] and
// ['BlockRemoved', block_hashes, medium]: vLLM's array form; trailing fields at their default are absent.
const STORED_HEAD = Buffer.concat([Buffer.from([0x97]), str('BlockStored')]);
const REMOVED_HEAD = Buffer.concat([Buffer.from([0x93]), str('BlockRemoved')]);
const GPU = str('GPU');
/** After the token ids: block_size 16, lora_id nil, medium 'GPU'. */
const STORED_TAIL = Buffer.concat([Buffer.from([0x10, 0xc0]), GPU]);
const NIL = 0xc0;

function seqFrame(seq) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(seq));
  return b;
}

/** `[ts, events, nil]` around pre-encoded events. */
function batch(events) {
  let size = 1 + 9 + 3 + 1;
  for (const e of events) size += e.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  out[at++] = 0x93;
  out[at++] = 0xcb;
  out.writeDoubleBE(Date.now() / 1000, at);
  at += 8;
  out[at++] = 0xdc;
  out.writeUInt16BE(events.length, at);
  at += 2;
  for (const e of events) at += e.copy(out, at);
  out[at++] = NIL;
  return out;
}

class Feeder {
  constructor(msg) {
    this.pub = new Publisher({ sendHighWaterMark: 0, linger: 0 });
    this.pub.connect(msg.address);
    this.endpoints = msg.endpoints;
    this.topics = msg.endpoints.map((e) => Buffer.from(`kv@${e}@model`));
    this.seqs = msg.endpoints.map(() => 0);
    this.random = xorshift(msg.seed);
    this.prompts = msg.prompts;
    this.tokens = msg.tokenPool.map(encodeTokens);
    this.blocksPerSecond = msg.blocksPerSecond;
    // The background ring: slot s holds the encoded hashes of the 16 blocks its last store wrote (endpoint s % 16:
    // the slot count is a multiple of the endpoint count, so each evicted block is its own endpoint's).
    this.slots = msg.residentBlocks / 16;
    if (!Number.isInteger(this.slots / this.endpoints.length)) throw new Error('feeder: ring not a multiple');
    this.slotBytes = hashesBytes(16);
    this.ring = Buffer.alloc(this.slots * this.slotBytes);
    this.events = 0;
    this.stored = 0;
    this.removed = 0;
    this.messages = 0;
    this.sending = Promise.resolve();
    this.probeSeq = 0;
  }

  /** Sends one 3-frame message on endpoint `e`'s topic (sequence +1 per message). Sends are serialised. */
  send(e, payload) {
    const frames = [this.topics[e], seqFrame(this.seqs[e]++), payload];
    this.messages++;
    this.sending = this.sending.then(() => this.pub.send(frames));
    return this.sending;
  }

  /** The events of the next background store (its removal first once the ring is full), as encoded bytes. */
  nextStore() {
    const slot = this.events % this.slots;
    const endpoint = this.events % this.endpoints.length;
    const at = slot * this.slotBytes;
    const out = [];
    if (this.events >= this.slots) {
      const removed = Buffer.allocUnsafe(REMOVED_HEAD.length + this.slotBytes + GPU.length);
      let p = REMOVED_HEAD.copy(removed, 0);
      p += this.ring.copy(removed, p, at, at + this.slotBytes);
      GPU.copy(removed, p);
      out.push(removed);
      this.removed += 16;
    }
    writeHashes(this.ring, at, 16, this.random);
    const tokens = this.tokens[this.events % this.tokens.length];
    const stored = Buffer.allocUnsafe(STORED_HEAD.length + this.slotBytes + 1 + tokens.length + STORED_TAIL.length);
    let p = STORED_HEAD.copy(stored, 0);
    p += this.ring.copy(stored, p, at, at + this.slotBytes);
    stored[p++] = NIL; // parent_block_hash: start of a sequence
    p += tokens.copy(stored, p);
    STORED_TAIL.copy(stored, p);
    out.push(stored);
    this.stored += 16;
    this.events++;
    return { endpoint, events: out };
  }

  /** `n` background stores, one message per endpoint with that endpoint's events. */
  publishStores(n) {
    const perEndpoint = this.endpoints.map(() => []);
    for (let i = 0; i < n; i++) {
      const s = this.nextStore();
      perEndpoint[s.endpoint].push(...s.events);
    }
    let last = this.sending;
    perEndpoint.forEach((events, e) => {
      if (events.length > 0) last = this.send(e, batch(events));
    });
    return last;
  }

  probe() {
    this.probing = setInterval(() => {
      const frames = [Buffer.from('kv@127.0.0.1:1@model'), seqFrame(this.probeSeq++), batch([])];
      this.sending = this.sending.then(() => this.pub.send(frames));
    }, 20);
  }

  async probeStop() {
    clearInterval(this.probing);
    await this.sending;
  }

  /** Prompt p on endpoints (p + 4k) % 16, k = 0..3: one BlockStored of its 64 blocks each (16-token blocks). */
  async resident() {
    const n = this.endpoints.length;
    let blocks = 0;
    for (let p = 0; p < this.prompts.length; p++) {
      const tokens = encodeTokens(this.prompts[p]);
      const count = this.prompts[p].length / 16;
      for (let k = 0; k < 4; k++) {
        const e = (p + k * 4) % n;
        const hashes = Buffer.allocUnsafe(hashesBytes(count));
        writeHashes(hashes, 0, count, this.random);
        const event = Buffer.concat([STORED_HEAD, hashes, Buffer.from([NIL]), tokens, STORED_TAIL]);
        await this.send(e, batch([event]));
        blocks += count;
      }
    }
    return blocks;
  }

  /** The background ring filled (256 stores per round, 16 per message), yielding between rounds. */
  async fill() {
    while (this.events < this.slots) {
      await this.publishStores(Math.min(256, this.slots - this.events));
      await new Promise((r) => setImmediate(r));
    }
    return this.stored;
  }

  /** `blocks` background blocks published as fast as fill() publishes, evictions included once the ring is full. */
  async burst(blocks) {
    const started = performance.now();
    const target = this.events + Math.ceil(blocks / 16);
    while (this.events < target) {
      await this.publishStores(Math.min(256, target - this.events));
      await new Promise((r) => setImmediate(r));
    }
    return { seconds: (performance.now() - started) / 1000 };
  }

  /** Every 10 ms the stores due by then at blocksPerSecond (a late timer catches up). */
  start() {
    const started = performance.now();
    const before = this.events;
    this.lateMaxMs = 0;
    this.ticks = 0;
    let expected = started + 10;
    this.timer = setInterval(() => {
      const now = performance.now();
      this.lateMaxMs = Math.max(this.lateMaxMs, now - expected);
      expected = now + 10;
      this.ticks++;
      const due = before + Math.floor(((now - started) / 1000) * (this.blocksPerSecond / 16)) - this.events;
      if (due > 0) void this.publishStores(due);
    }, 10);
  }

  async stop() {
    clearInterval(this.timer);
    await this.sending;
  }

  close() {
    clearInterval(this.timer);
    clearInterval(this.probing);
    this.pub.close();
  }
}

let feeder = null;
const cpuSince = (mark) => {
  const u = process.cpuUsage(mark);
  return (u.user + u.system) / 1e6;
};
const cpuStart = process.cpuUsage();

process.on('message', async (msg) => {
  try {
    switch (msg.type) {
      case 'setup':
        feeder?.close();
        feeder = new Feeder(msg);
        process.send({ type: 'ready' });
        break;
      case 'probe':
        feeder.probe();
        process.send({ type: 'probing' });
        break;
      case 'probeStop':
        await feeder.probeStop();
        process.send({ type: 'probed', probes: feeder.probeSeq });
        break;
      case 'resident':
        process.send({ type: 'published', blocks: await feeder.resident() });
        break;
      case 'fill':
        process.send({ type: 'filled', blocks: await feeder.fill() });
        break;
      case 'start':
        feeder.start();
        process.send({ type: 'started' });
        break;
      case 'count':
        process.send({
          type: 'counted',
          stored: feeder.stored,
          removed: feeder.removed,
          messages: feeder.messages,
          cpuSeconds: cpuSince(cpuStart),
          at: performance.now() + performance.timeOrigin,
        });
        break;
      case 'stop':
        await feeder.stop();
        process.send({
          type: 'stopped',
          stored: feeder.stored,
          removed: feeder.removed,
          messages: feeder.messages,
          ticks: feeder.ticks,
          timerLateMaxMs: feeder.lateMaxMs,
        });
        break;
      case 'burst': {
        const { seconds } = await feeder.burst(msg.blocks);
        process.send({ type: 'bursted', stored: feeder.stored, seconds });
        break;
      }
      case 'exit':
        feeder?.close();
        process.disconnect();
        break;
    }
  } catch (err) {
    process.send({ type: 'error', message: String(err?.stack ?? err) });
  }
});
