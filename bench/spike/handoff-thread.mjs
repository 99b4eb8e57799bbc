// The thread of handoff.mjs: answers each request with a fixed 600-byte reply after reading every request byte.
import { parentPort, workerData } from 'node:worker_threads';
import { RingReader, RingWriter } from './handoff-ring.mjs';

const reply = new Uint8Array(600).fill(7);
const work = (request) => {
  let sum = 0;
  for (let i = 0; i < request.length; i++) sum = (sum + request[i]) | 0;
  new DataView(reply.buffer).setInt32(0, sum, true); // main checks it: the reply was computed from this request
};

if (workerData.mode === 'ring') {
  parentPort.postMessage('ready');
  const replies = new RingWriter(workerData.replies);
  new RingReader(workerData.requests).serveBlocking((request) => {
    work(request);
    replies.write(reply);
  });
} else {
  parentPort.on('message', (m) => {
    if (Array.isArray(m)) {
      const out = m.map((request) => {
        work(request);
        return reply.slice();
      });
      parentPort.postMessage(
        out,
        out.map((r) => r.buffer),
      );
    } else {
      work(m);
      const r = reply.slice();
      parentPort.postMessage(r, [r.buffer]);
    }
  });
  parentPort.postMessage('ready');
}
