// Spike (issue 16): what handing a Score call to another thread and back costs, without HTTP/2, three ways:
//   port     one MessagePort message per call each way (request bytes transferred), as shape A was first measured;
//   batch    the calls of one turn of the main loop in one message, the replies of one drain in one message;
//   ring     two single-producer single-consumer rings in a SharedArrayBuffer (requests → thread, replies → main):
//            the thread sleeps in Atomics.wait and is woken by Atomics.notify; main waits with Atomics.waitAsync, so
//            its event loop stays free; one notify per batch written.
// The thread answers each request (1,536 bytes, as a 1,024-token Score request) with a fixed 600-byte reply after
// touching every request byte (a checksum), so the figure is the hand-off alone. Both threads' CPU is counted
// (process.cpuUsage covers all threads). Paced: 5,000 calls/s sent from a 1-ms timer (as an HTTP/2 server hands them
// over), and closed loop (16 in flight).
//
//   node bench/spike/handoff.mjs [port|batch|ring ...]
import { Worker } from 'node:worker_threads';
import { RingReader, RingWriter, newRing } from './handoff-ring.mjs';

const REQUEST_BYTES = 1536;
const SECONDS = Number(process.env.SPIKE_SECONDS ?? 5);
const request = new Uint8Array(REQUEST_BYTES).map((_, i) => (i * 37 + (i >> 8)) & 0xff);
const expectedSum = request.reduce((a, b) => (a + b) | 0, 0);

function startThread(mode) {
  const requests = newRing(1 << 20);
  const replies = newRing(1 << 20);
  const worker = new Worker(new URL('./handoff-thread.mjs', import.meta.url), {
    workerData: { mode, requests: requests.sab, replies: replies.sab },
  });
  return { worker, toThread: new RingWriter(requests), fromThread: new RingReader(replies) };
}

async function run(mode, shape) {
  const { worker, toThread, fromThread } = startThread(mode);
  await new Promise((r) => worker.once('message', r));
  let answered = 0;
  let wrongReplies = 0;
  const onReply = (bytes) => {
    answered++;
    if (new DataView(bytes.buffer, bytes.byteOffset, 4).getInt32(0, true) !== expectedSum) wrongReplies++;
    if (shape === 'closed') send();
  };
  let batch = [];
  let flushScheduled = false;
  const flush = () => {
    flushScheduled = false;
    worker.postMessage(
      batch,
      batch.map((b) => b.buffer),
    );
    batch = [];
  };
  const send = () => {
    const copy = request.slice();
    if (mode === 'port') worker.postMessage(copy, [copy.buffer]);
    else if (mode === 'batch') {
      batch.push(copy);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    } else toThread.write(request);
  };
  if (mode === 'ring') {
    fromThread.onMessages(onReply);
  } else {
    worker.on('message', (m) => {
      if (Array.isArray(m)) for (const r of m) onReply(r);
      else onReply(m);
    });
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let sent = 0;
  if (shape === 'closed') {
    for (let i = 0; i < 16; i++) send();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
  } else {
    await new Promise((resolve) => {
      const timer = setInterval(() => {
        const due = Math.floor(((performance.now() - t0) / 1000) * 5000);
        while (sent < due) {
          send();
          sent++;
        }
        if (performance.now() - t0 > SECONDS * 1000) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const calls = answered;
  fromThread.stop();
  await worker.terminate();
  return {
    mode,
    shape,
    callsPerSecond: Math.round(calls / seconds),
    cpuUsPerCall: +(((cpu.user + cpu.system) / calls) | 0),
    wrongReplies,
  };
}

for (const mode of process.argv.slice(2).length ? process.argv.slice(2) : ['port', 'batch', 'ring']) {
  for (const shape of ['paced', 'closed']) console.log(JSON.stringify(await run(mode, shape)));
}
