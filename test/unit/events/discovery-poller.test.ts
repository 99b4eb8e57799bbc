import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { DiscoveryPoller, newDiscoveryCounters } from '../../../src/events/discovery.js';
import { waitFor } from '../../support/zmq.js';

const quiet = { warn: () => undefined, info: () => undefined };

/** A real HTTP server on 127.0.0.1 answering /kv_event_sources with `body` (vLLM's bare-array shape). */
async function server(body: () => string) {
  const http = createServer((_req, res) => res.end(body()));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    close: () => new Promise((r) => (http.closeAllConnections(), http.close(r))),
  };
}

describe('DiscoveryPoller', () => {
  it('counts a failing apply as apply_failed, keeps polling, backs off exponentially up to the cap, and resets on success', async () => {
    const http = await server(
      () => '[{"data_parallel_rank":0,"endpoint":"tcp://*:5557","replay_endpoint":null,"topic":""}]',
    );
    const counters = newDiscoveryCounters();
    let fail = true;
    const applied: unknown[] = [];
    const poller = new DiscoveryPoller(
      http.url,
      { intervalMs: 10, timeoutMs: 500, maxBackoffMs: 80, maxBodyBytes: 1024, maxSources: 4 },
      async (sources) => {
        if (fail) throw new Error('socket would not open');
        applied.push(sources);
      },
      counters,
      quiet,
    );
    const seen: [number, number][] = [];
    expect(poller.nextDelay()).toBe(10);
    poller.start();
    try {
      for (let n = 1; n <= 4; n++) {
        await waitFor(() => poller.status().failures >= n, `failure ${n}`);
        seen.push([poller.status().failures, poller.nextDelay()]);
      }
      // 10 ms × 2^n after n failures in a row, capped at 80.
      for (const [failures, delay] of seen) expect(delay).toBe(Math.min(80, 10 * 2 ** failures));
      expect(seen.at(-1)![1]).toBe(80);
      expect(poller.status()).toMatchObject({
        state: 'failing',
        lastError: 'apply_failed: Error: socket would not open',
        sources: [],
      });
      fail = false;
      await waitFor(() => applied.length > 0, 'a good poll');
      expect(applied[0]).toEqual([{ rank: 0, endpoint: 'tcp://127.0.0.1:5557', replay: null, topic: '' }]);
      expect(poller.status()).toMatchObject({ state: 'ok', lastError: null, failures: 0 });
      expect(poller.nextDelay()).toBe(10);
      expect(counters.polls.apply_failed).toBeGreaterThanOrEqual(4);
      expect(counters.polls.ok).toBeGreaterThanOrEqual(1);
    } finally {
      await poller.stop();
      await http.close();
    }
    const polls = poller.polls;
    await new Promise((r) => setTimeout(r, 50));
    expect(poller.polls).toBe(polls); // stopped: no further poll
  });

  it('connect_error for a port nobody listens on', async () => {
    const http = await server(() => '[]');
    await http.close(); // the port is free again: nothing answers
    const counters = newDiscoveryCounters();
    const poller = new DiscoveryPoller(
      http.url,
      { intervalMs: 10, timeoutMs: 500, maxBackoffMs: 20, maxBodyBytes: 1024, maxSources: 4 },
      async () => undefined,
      counters,
      quiet,
    );
    poller.start();
    try {
      await waitFor(() => (counters.polls.connect_error ?? 0) >= 1, 'connect_error');
      expect(poller.status().lastError).toMatch(/^connect_error: connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
    } finally {
      await poller.stop();
    }
  });
});
