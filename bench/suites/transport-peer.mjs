// Publisher side of the transport bench, in a worker thread so that the measured thread only receives, decodes and
// applies: a PUB that publishes the given frames as fast as it can on 'go', and a replay ROUTER (new layout) that
// serves them as a vLLM publisher's buffer.
import { parentPort, workerData } from 'node:worker_threads';
import { Publisher, Router } from 'zeromq';

const { pubAddress, frames, replay } = workerData;
const END = Buffer.alloc(8, 0xff);
const pub = new Publisher({ sendHighWaterMark: 0, linger: 0 });
let router = null;

parentPort.on('message', async (msg) => {
  if (msg.type === 'start') {
    if (pubAddress) pub.connect(pubAddress);
    if (replay) {
      router = new Router({ linger: 0 });
      await router.bind('tcp://127.0.0.1:*');
      serve(router);
    }
    parentPort.postMessage({ type: 'ready', replayAddress: router?.lastEndpoint ?? null });
  } else if (msg.type === 'probe') {
    await pub.send(msg.frames);
    parentPort.postMessage({ type: 'probed' });
  } else if (msg.type === 'go') {
    for (const f of frames) await pub.send(f);
    parentPort.postMessage({ type: 'sent', count: frames.length });
  } else if (msg.type === 'stop') {
    pub.close();
    router?.close();
    parentPort.close();
  }
});

async function serve(r) {
  try {
    for await (const [identity, , start] of r) {
      const from = Buffer.from(start).readBigUInt64BE(0);
      for (const [topic, seq, payload] of frames) {
        if (Buffer.from(seq).readBigUInt64BE(0) >= from) await r.send([identity, '', topic, seq, payload]);
      }
      await r.send([identity, '', frames[0][0], END, '']);
    }
  } catch (err) {
    if (!r.closed) throw err;
  }
}
