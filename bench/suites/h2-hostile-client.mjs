// Hostile HTTP/2 clients of the grpc-hygiene benchmark (issue 17, bug 5): a CHILD PROCESS, so that what they cost
// on the client side stays out of the measured server process. Plain JS, started with child_process.fork; driven over
// the IPC channel. Three kinds, each left connected until the SERVER closes it:
//
//   hold:       `connections` raw TCP connections, each opening `streams` Score calls that send their HEADERS and
//               nothing more (no message, no END_STREAM): unary calls left pending forever. Written as raw frames
//               (one fixed HPACK block per stream, no per-stream object here), then a PING: its ACK means the server
//               has processed every HEADERS frame before it. The client answers the server's PINGs (keepalive), reads
//               what it is sent, and counts the streams the server refused (RST_STREAM).
//   neverRead:  one raw connection that sends complete Score calls at `rate` per second and never reads a response
//               at the HTTP/2 level: it sends no WINDOW_UPDATE, so once the initial windows (65,535 bytes) are used the
//               server can send it no more DATA. (Node's http2 client cannot do this: a paused stream still has its
//               DATA consumed into the stream's buffer and the windows reopened, as a first version of this bench saw.)
//   idle:       one node:http2 session that exchanges SETTINGS and then sends nothing.
import { connect as http2Connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { grpcFrame, score } from '../raw-score.mjs';

const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 };
const FLAG = { ACK: 1, END_HEADERS: 4 };

function frameHeader(length, type, flags, stream) {
  const b = Buffer.alloc(9);
  b.writeUIntBE(length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(stream, 5);
  return b;
}

function hostPort(address) {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** HPACK literal without indexing (RFC 7541 §6.2.2); strings short enough for a 7-bit length. */
function literal(nameIndex, name, value) {
  const str = (s) => [Buffer.byteLength(s), ...Buffer.from(s)];
  return nameIndex
    ? [nameIndex < 15 ? nameIndex : 15, ...(nameIndex < 15 ? [] : [nameIndex - 15]), ...str(value)]
    : [0, ...str(name), ...str(value)];
}

/** HEADERS block of a Score call: POST, http, :path, :authority, content-type, te. */
function scoreHeaderBlock(authority) {
  return Buffer.from([
    0x83,
    0x86,
    ...literal(4, null, score.path),
    ...literal(1, null, authority),
    ...literal(0, 'content-type', 'application/grpc'),
    ...literal(0, 'te', 'trailers'),
  ]);
}

/** One raw connection holding `streams` pending calls. Resolves once the server has seen them all (PING ACK). */
function holdConnection(address, streams, tally) {
  const { host, port } = hostPort(address);
  const block = scoreHeaderBlock(address);
  return new Promise((resolve) => {
    const socket = netConnect({ host, port, noDelay: true });
    const opened = performance.now();
    let rest = null;
    let settled = false;
    const settle = () => {
      if (!settled) {
        settled = true;
        resolve();
      }
    };
    socket.on('error', () => undefined);
    socket.on('close', () => {
      tally.closed++;
      tally.maxLifeMs = Math.max(tally.maxLifeMs, performance.now() - opened);
      settle();
    });
    const onFrame = (type, flags, id, buf, at) => {
      if (type === FRAME.SETTINGS && !(flags & FLAG.ACK)) {
        socket.write(frameHeader(0, FRAME.SETTINGS, FLAG.ACK, 0));
        // The server's SETTINGS came: open the streams (stream ids 1, 3, 5, …), then a PING to know they arrived.
        const frames = [];
        for (let s = 0; s < streams; s++)
          frames.push(frameHeader(block.length, FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * s), block);
        frames.push(frameHeader(8, FRAME.PING, 0, 0), Buffer.from('holdping'));
        socket.write(Buffer.concat(frames));
        tally.opened += streams;
      } else if (type === FRAME.PING) {
        if (flags & FLAG.ACK) settle();
        else socket.write(Buffer.concat([frameHeader(8, FRAME.PING, FLAG.ACK, 0), buf.subarray(at, at + 8)]));
      } else if (type === FRAME.RST_STREAM) tally.reset++;
      else if (type === FRAME.GOAWAY) tally.goaway++;
    };
    socket.on('data', (chunk) => {
      const buf = rest ? Buffer.concat([rest, chunk]) : chunk;
      let at = 0;
      while (buf.length - at >= 9) {
        const length = buf.readUIntBE(at, 3);
        if (buf.length - at < 9 + length) break;
        onFrame(buf[at + 3], buf[at + 4], buf.readUInt32BE(at + 5) & 0x7fffffff, buf, at + 9, length);
        at += 9 + length;
      }
      rest = at === buf.length ? null : buf.subarray(at);
    });
    socket.write(
      Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frameHeader(0, FRAME.SETTINGS, 0, 0)]),
    );
  });
}

// lifeMs: from connect to the server closing the connection (the longest one of the held connections).
const hold = { opened: 0, reset: 0, goaway: 0, closed: 0, connections: 0, maxLifeMs: 0 };
const never = {
  sent: 0,
  responses: 0,
  completed: 0,
  refused: 0,
  dataBytes: 0,
  open: 0,
  closed: false,
  lifeMs: null,
  timer: null,
  socket: null,
};
const idle = { closed: false, lifeMs: null };

async function startHold({ address, connections, streams }) {
  hold.connections += connections;
  // A few connections at a time: the server's CPU, not a burst of connects, paces the opening.
  for (let c = 0; c < connections; c += 10) {
    await Promise.all(
      Array.from({ length: Math.min(10, connections - c) }, () => holdConnection(address, streams, hold)),
    );
  }
  return { ...hold, held: hold.opened - hold.reset };
}

/**
 * A raw connection that sends Score calls (HEADERS + DATA with END_STREAM) at `rate` per second, at most as many at
 * once as the server's SETTINGS_MAX_CONCURRENT_STREAMS allows, reads the socket (SETTINGS, PINGs are answered) but
 * never sends a WINDOW_UPDATE: once the server has sent 65,535 bytes of responses (the initial connection window),
 * every further response waits in the server, and its stream stays open.
 */
function startNeverRead({ address, rate, request }) {
  const { host, port } = hostPort(address);
  const block = scoreHeaderBlock(address);
  const message = grpcFrame(score.requestSerialize(request));
  const socket = netConnect({ host, port, noDelay: true });
  const opened = performance.now();
  never.socket = socket;
  const open = new Set();
  let nextId = 1;
  let maxStreams = 100; // RFC 9113 §6.5.2: until the server's SETTINGS say otherwise, assume few
  let rest = null;
  socket.on('error', () => undefined);
  socket.on('close', () => {
    never.closed = true;
    never.lifeMs = performance.now() - opened;
    clearInterval(never.timer);
  });
  const onFrame = (type, flags, id, buf, at, length) => {
    if (type === FRAME.SETTINGS && !(flags & FLAG.ACK)) {
      for (let q = at; q + 6 <= at + length; q += 6)
        if (buf.readUInt16BE(q) === 0x3) maxStreams = buf.readUInt32BE(q + 2);
      socket.write(frameHeader(0, FRAME.SETTINGS, FLAG.ACK, 0));
    } else if (type === FRAME.PING && !(flags & FLAG.ACK)) {
      socket.write(Buffer.concat([frameHeader(8, FRAME.PING, FLAG.ACK, 0), buf.subarray(at, at + 8)]));
    } else if (type === FRAME.DATA) {
      never.dataBytes += length; // received, never acknowledged with a WINDOW_UPDATE
      if (flags & 1) open.delete(id);
    } else if (type === FRAME.HEADERS) {
      if (flags & 1) {
        if (open.delete(id)) never.completed++;
      } else never.responses++;
    } else if (type === FRAME.RST_STREAM) {
      open.delete(id);
      never.refused++;
    }
  };
  socket.on('data', (chunk) => {
    const buf = rest ? Buffer.concat([rest, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 9) {
      const length = buf.readUIntBE(at, 3);
      if (buf.length - at < 9 + length) break;
      onFrame(buf[at + 3], buf[at + 4], buf.readUInt32BE(at + 5) & 0x7fffffff, buf, at + 9, length);
      at += 9 + length;
    }
    rest = at === buf.length ? null : buf.subarray(at);
  });
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frameHeader(0, FRAME.SETTINGS, 0, 0)]));
  const perTick = Math.max(1, Math.round(rate / 100));
  never.timer = setInterval(() => {
    const frames = [];
    for (let i = 0; i < perTick && open.size < maxStreams; i++) {
      const id = nextId;
      nextId += 2;
      open.add(id);
      frames.push(
        frameHeader(block.length, FRAME.HEADERS, FLAG.END_HEADERS, id),
        block,
        frameHeader(message.length, FRAME.DATA, 1, id),
        message,
      );
      never.sent++;
    }
    never.open = open.size;
    if (frames.length > 0 && !socket.destroyed) socket.write(Buffer.concat(frames));
  }, 10);
}

function startIdle({ address }) {
  const session = http2Connect(`http://${address}`);
  const opened = performance.now();
  session.on('error', () => undefined);
  session.on('close', () => {
    idle.closed = true;
    idle.lifeMs = performance.now() - opened;
  });
  return new Promise((resolve) => session.once('remoteSettings', () => resolve()));
}

function status() {
  const { sent, responses, completed, refused, dataBytes, open, closed, lifeMs } = never;
  return {
    hold: { ...hold, held: hold.opened - hold.reset },
    neverRead: { sent, responses, completed, refused, dataBytes, open, closed, lifeMs },
    idle,
  };
}

process.on('message', async (msg) => {
  try {
    if (msg.type === 'hold') process.send({ type: 'held', result: await startHold(msg) });
    else if (msg.type === 'neverRead') {
      startNeverRead(msg);
      process.send({ type: 'started' });
    } else if (msg.type === 'idle') {
      await startIdle(msg);
      process.send({ type: 'started' });
    } else if (msg.type === 'stopSending') {
      clearInterval(never.timer);
      process.send({ type: 'status', result: status() });
    } else if (msg.type === 'status') process.send({ type: 'status', result: status() });
    else if (msg.type === 'exit') process.exit(0);
  } catch (err) {
    process.send({ type: 'error', message: String(err?.stack ?? err) });
  }
});
