// Load generator of the gRPC benchmark: a CHILD PROCESS (not a worker thread), so the measured server process keeps
// its event loop and its GC to itself. Plain JS, started with child_process.fork; driven over the IPC channel.
//
// Two kinds of phase:
//   closed: `concurrency` calls in flight, a new one as soon as one returns → maximum throughput;
//   open:   calls sent on a fixed schedule (`rate` per second) whatever the replies, latency measured from each call's
//           SCHEDULED send time, so a stalled server cannot hide its queueing (no coordinated omission).
//
// The client must cost far less than the server it measures (on 2 cores it competes for the same CPU). Node's http2
// client costs ~100 µs of CPU per call (a Duplex stream and its events per call), more than the server's grpc-js, so
// the phases run over a minimal HTTP/2 client of its own (RawH2Connection): per call, one pre-built buffer
// (HEADERS with a fixed literal header block + DATA with the pre-serialised gRPC message) with the stream id patched
// in, and a frame parser that only follows stream ends, flow control, SETTINGS and PING. It does not decode HPACK, so
// it checks a response by its DATA bytes: a call succeeds when it received exactly the bytes of that request's
// response, which `setup` records through Node's http2 client beforehand, with the grpc-status checked (an error reply
// carries no DATA at all).
import { connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { grpcFrame, SCORE_HEADERS, score } from '../raw-score.mjs';

function hostPort(address) {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** One call through Node's http2 client, grpc-status checked; resolves with the response's DATA bytes. */
async function checkedCall(address, payload) {
  const { host, port } = hostPort(address);
  const session = connect(`http://${address}`, { createConnection: () => netConnect({ host, port, noDelay: true }) });
  session.on('error', () => {});
  try {
    return await new Promise((resolve, reject) => {
      const stream = session.request(SCORE_HEADERS);
      let grpcStatus = null;
      const chunks = [];
      stream.on('response', (h) => h['grpc-status'] !== undefined && (grpcStatus = h['grpc-status']));
      stream.on('trailers', (t) => (grpcStatus = t['grpc-status']));
      stream.on('data', (c) => chunks.push(c));
      stream.on('error', reject);
      stream.on('close', () =>
        grpcStatus === '0' ? resolve(Buffer.concat(chunks)) : reject(new Error(`grpc-status ${grpcStatus}`)),
      );
      stream.end(payload);
    });
  } finally {
    session.close();
  }
}

// --- a minimal HTTP/2 client (RFC 9113) ---------------------------------------------------------------------------
const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 };
const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4, PADDED: 8 };
const MAX_WINDOW = 2 ** 31 - 1;

function frameHeader(length, type, flags, stream) {
  const b = Buffer.alloc(9);
  b.writeUIntBE(length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(stream, 5);
  return b;
}

/** HPACK integer with an n-bit prefix (RFC 7541 §5.1). */
function hpackInt(value, bits, firstByte) {
  const max = (1 << bits) - 1;
  if (value < max) return [firstByte | value];
  const out = [firstByte | max];
  value -= max;
  while (value >= 128) {
    out.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  out.push(value);
  return out;
}
const hpackString = (s) => [...hpackInt(Buffer.byteLength(s), 7, 0), ...Buffer.from(s)];
/** Literal header field without indexing (so the server's HPACK state never depends on ours), name from the static table. */
const hpackIndexedName = (index, value) => [...hpackInt(index, 4, 0), ...hpackString(value)];
const hpackNewName = (name, value) => [0, ...hpackString(name), ...hpackString(value)];

function headerBlock(authority, path) {
  return Buffer.from([
    0x83, // :method POST
    0x86, // :scheme http
    ...hpackIndexedName(4, path), // :path
    ...hpackIndexedName(1, authority), // :authority
    ...hpackNewName('content-type', 'application/grpc'),
    ...hpackNewName('te', 'trailers'),
  ]);
}

class RawH2Connection {
  constructor(address) {
    const { host, port } = hostPort(address);
    this.block = headerBlock(address, score.path);
    this.socket = netConnect({ host, port, noDelay: true });
    // A connection the server closes (GOAWAY, reset, close) fails what it carries and every later call on it: the
    // phase then ends with those calls counted as errors instead of waiting forever for answers that cannot come.
    this.dead = false;
    this.socket.on('error', () => this.failAll());
    this.socket.on('close', () => this.failAll());
    this.nextStream = 1;
    this.streams = new Map();
    this.sendWindow = 65535;
    this.maxStreams = Infinity;
    this.queue = [];
    this.rest = null;
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(0x2, 0); // ENABLE_PUSH = 0
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(0x4, 6); // INITIAL_WINDOW_SIZE = max: responses never wait for our WINDOW_UPDATEs
    settings.writeUInt32BE(MAX_WINDOW, 8);
    const windowUpdate = Buffer.alloc(4);
    windowUpdate.writeUInt32BE(MAX_WINDOW - 65535, 0);
    this.socket.write(
      Buffer.concat([
        Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
        frameHeader(12, FRAME.SETTINGS, 0, 0),
        settings,
        frameHeader(4, FRAME.WINDOW_UPDATE, 0, 0),
        windowUpdate,
      ]),
    );
    this.socket.on('data', (chunk) => this.onData(chunk));
  }

  /** The bytes of one call: HEADERS (fixed block) + DATA (END_STREAM) with `payload`; stream ids patched per call. */
  template(payload) {
    const h = frameHeader(this.block.length, FRAME.HEADERS, FLAG.END_HEADERS, 0);
    const d = frameHeader(payload.length, FRAME.DATA, FLAG.END_STREAM, 0);
    return {
      bytes: Buffer.concat([h, this.block, d, payload]),
      dataAt: 9 + this.block.length,
      dataLength: payload.length,
    };
  }

  /** Sends a call; `done(ok)` when its stream ends: ok = exactly `expected` DATA bytes came back. */
  call(template, expected, done) {
    if (this.dead) return void queueMicrotask(() => done(false));
    if (this.queue.length > 0 || this.sendWindow < template.dataLength || this.streams.size >= this.maxStreams) {
      this.queue.push({ template, expected, done });
      return;
    }
    this.send(template, expected, done);
  }

  send(template, expected, done) {
    const id = this.nextStream;
    this.nextStream += 2;
    const out = Buffer.allocUnsafe(template.bytes.length);
    template.bytes.copy(out);
    out.writeUInt32BE(id, 5);
    out.writeUInt32BE(id, template.dataAt + 5);
    this.sendWindow -= template.dataLength;
    this.streams.set(id, { expected, received: 0, done });
    this.socket.write(out);
  }

  drain() {
    while (this.queue.length > 0) {
      const next = this.queue[0];
      if (this.sendWindow < next.template.dataLength || this.streams.size >= this.maxStreams) return;
      this.queue.shift();
      this.send(next.template, next.expected, next.done);
    }
  }

  onData(chunk) {
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 9) {
      const length = buf.readUIntBE(at, 3);
      if (buf.length - at < 9 + length) break;
      this.onFrame(buf[at + 3], buf[at + 4], buf.readUInt32BE(at + 5) & 0x7fffffff, buf, at + 9, length);
      at += 9 + length;
    }
    this.rest = at === buf.length ? null : buf.subarray(at);
  }

  onFrame(type, flags, id, buf, at, length) {
    switch (type) {
      case FRAME.DATA: {
        const st = this.streams.get(id);
        if (st) st.received += flags & FLAG.PADDED ? length - 1 - buf[at] : length;
        if (flags & FLAG.END_STREAM) this.end(id, true);
        return;
      }
      case FRAME.HEADERS:
        if (flags & FLAG.END_STREAM) this.end(id, true);
        return;
      case FRAME.RST_STREAM:
        this.end(id, false);
        return;
      case FRAME.SETTINGS:
        if (flags & FLAG.ACK) return;
        for (let p = at; p + 6 <= at + length; p += 6)
          if (buf.readUInt16BE(p) === 0x3) this.maxStreams = buf.readUInt32BE(p + 2);
        this.socket.write(frameHeader(0, FRAME.SETTINGS, FLAG.ACK, 0));
        return;
      case FRAME.PING:
        if (!(flags & FLAG.ACK))
          this.socket.write(Buffer.concat([frameHeader(8, FRAME.PING, FLAG.ACK, 0), buf.subarray(at, at + 8)]));
        return;
      case FRAME.WINDOW_UPDATE:
        if (id === 0) {
          this.sendWindow += buf.readUInt32BE(at) & 0x7fffffff;
          this.drain();
        }
        return;
      case FRAME.GOAWAY:
        this.failAll();
        return;
    }
  }

  end(id, clean) {
    const st = this.streams.get(id);
    if (!st) return;
    this.streams.delete(id);
    st.done(clean && st.received === st.expected);
    this.drain();
  }

  failAll() {
    this.dead = true;
    const streams = [...this.streams.values(), ...this.queue];
    this.streams.clear();
    this.queue = [];
    for (const st of streams) st.done(false);
  }

  close() {
    this.socket.destroy();
  }
}

/** Round-robin over a few connections; one template and one expected response size per request. */
class Connections {
  constructor(address, count, payloads, expected) {
    this.conns = Array.from({ length: count }, () => new RawH2Connection(address));
    this.templates = this.conns.map((c) => payloads.map((p) => c.template(p)));
    this.expected = expected;
    this.next = 0;
  }
  /** Sends request `i`; `done(ok)` once it has ended. */
  call(i, done) {
    const c = this.next++ % this.conns.length;
    this.conns[c].call(this.templates[c][i], this.expected[i], done);
  }
  close() {
    for (const c of this.conns) c.close();
  }
}

const now = () => performance.now();

let cpuMark = process.cpuUsage();
/** CPU the client itself used since the last mark, as a fraction of one core. */
function clientCpu(elapsed) {
  const used = process.cpuUsage(cpuMark);
  cpuMark = process.cpuUsage();
  return (used.user + used.system) / 1e6 / elapsed;
}

function summary(latencies, count, errors, elapsed, extra = {}) {
  const sorted = Float64Array.from(latencies.subarray(0, count)).sort();
  const pct = (p) => (count === 0 ? NaN : sorted[Math.min(count - 1, Math.floor((p / 100) * count))]);
  return {
    calls: count,
    errors,
    seconds: elapsed,
    requestsPerSecond: count / elapsed,
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    p999: pct(99.9),
    max: count ? sorted[count - 1] : NaN,
    clientCpuCores: clientCpu(elapsed),
    ...extra,
  };
}

function closedLoop(conns, requests, { seconds, concurrency }) {
  return new Promise((resolve) => {
    const latencies = new Float64Array(Math.ceil(seconds * 50_000) + 1000);
    let count = 0;
    let errors = 0;
    let next = 0;
    let running = concurrency;
    clientCpu(1);
    const started = now();
    const end = started + seconds * 1000;
    const one = () => {
      const t0 = now();
      conns.call(next++ % requests, (ok) => {
        const t1 = now();
        if (ok) {
          if (count < latencies.length) latencies[count++] = t1 - t0;
        } else errors++;
        if (t1 < end) one();
        else if (--running === 0) resolve(summary(latencies, count, errors, (t1 - started) / 1000));
      });
    };
    for (let i = 0; i < concurrency; i++) one();
  });
}

function openLoop(conns, requests, { seconds, rate }) {
  return new Promise((resolve) => {
    const total = Math.round(seconds * rate);
    const latencies = new Float64Array(total);
    const sendLag = new Float64Array(total);
    const interval = 1000 / rate;
    let sent = 0;
    let count = 0;
    let answered = 0;
    let errors = 0;
    let maxInFlight = 0;
    clientCpu(1);
    const started = now();
    const finish = () => {
      const lag = Float64Array.from(sendLag).sort();
      resolve(
        summary(latencies, count, errors, seconds, {
          offeredPerSecond: rate,
          maxInFlight,
          sendLagP99: lag[Math.floor(0.99 * total)],
          latencyFrom: 'scheduled send time',
        }),
      );
    };
    // Every call whose scheduled time has come is sent now; its latency counts from that scheduled time.
    const sendDue = () => {
      const t = now();
      while (sent < total && started + sent * interval <= t) {
        const scheduled = started + sent * interval;
        sendLag[sent] = t - scheduled;
        sent++;
        maxInFlight = Math.max(maxInFlight, sent - answered);
        conns.call(sent % requests, (ok) => {
          answered++;
          if (ok) latencies[count++] = now() - scheduled;
          else errors++;
          if (answered === total) finish();
          // A reply is a moment this loop is awake anyway: calls that fell due since the last timer go out now, not
          // up to a timer's millisecond later (the client's own lag would count in every latency).
          else sendDue();
        });
      }
    };
    const tick = () => {
      sendDue();
      if (sent < total) setTimeout(tick, Math.max(0, started + sent * interval - now() - 0.5));
    };
    tick();
  });
}

let conns = null;
let requestCount = 0;
process.on('message', async (msg) => {
  try {
    if (msg.type === 'setup') {
      conns?.close();
      const frames = msg.requests.map((r) => grpcFrame(score.requestSerialize(r)));
      // Every request once through Node's http2 client, grpc-status checked: the server answers real Score responses,
      // and their sizes are what the raw client expects back.
      const expected = [];
      for (const f of frames) {
        const body = await checkedCall(msg.address, f);
        const reply = score.responseDeserialize(body.subarray(5));
        if (!Array.isArray(reply.scores) || reply.scores.length === 0)
          throw new Error('grpc bench: unexpected Score response');
        expected.push(body.length);
      }
      conns = new Connections(msg.address, msg.connections, frames, expected);
      requestCount = frames.length;
      process.send({ type: 'ready', bytes: expected[0] });
    } else if (msg.type === 'closed') {
      process.send({ type: 'result', result: await closedLoop(conns, requestCount, msg) });
    } else if (msg.type === 'open') {
      process.send({ type: 'result', result: await openLoop(conns, requestCount, msg) });
    } else if (msg.type === 'close') {
      // Closes the connections (a client going away), so that the server's connection count can be read without them.
      conns?.close();
      conns = null;
      process.send({ type: 'closed' });
    } else if (msg.type === 'exit') {
      conns?.close();
      process.disconnect();
    }
  } catch (err) {
    process.send({ type: 'error', message: String(err?.stack ?? err) });
  }
});
