import type { ChildProcess } from 'node:child_process';
import { forkChild, requestChild } from '../support/child.js';
import { loadavg } from 'node:os';
import { startEmbedded, embeddedConfig, type EmbeddedService } from '../../src/service/embedded.js';
import { rng, type Figure, type Suite } from '../harness.js';
import { LoadClient, watchPauses, type PhaseResult } from './grpc.js';
import { BENCH_CANDIDATES, BENCH_PROMPT_TOKENS, indexResidentPrompts } from '../support/resident-prompts.js';

const CANDIDATES = BENCH_CANDIDATES.length;
const PROMPT_TOKENS = BENCH_PROMPT_TOKENS;
/** Client A's offered rate (open loop, latency from each call's scheduled send time). */
const RATE = 1_000;
/**
 * Streams each held connection opens: below the default api.maxConcurrentStreams (1024), so no connection breaks the
 * per-connection limit; 100 connections of them are far over the default api.maxOpenCalls (4096), the server-wide one.
 */
const STREAMS_PER_CONNECTION = 1_000;

/**
 * Issue 17 bug 5, measured: client A's Score latency (1k tokens, 16 candidates, open loop at RATE req/s, from a child
 * process) alone, then while other connections hold ~100k Score calls open that never end (100 connections × 1,000
 * streams), then while a client sends Score calls and never reads a response (its flow-control windows stay full),
 * then alone again (the difference between the two "alone" runs is the noise). Of the 100k held calls the server keeps
 * api.maxOpenCalls and answers the rest RESOURCE_EXHAUSTED; each of client A's calls admitted at the bound resets the
 * oldest call of the connection holding the most (connection-limits.ts, guardCalls). The hostile clients run in another
 * child process (h2-hostile-client.mjs) and never close anything: the server's connection count must come back to
 * where it was by itself — through the maximum connection age (+ grace) for connections with calls open, the idle
 * timeout for one that says hello and then nothing. The service is the real one (startEmbedded), with small idle and
 * age settings so that the reclaiming happens within the run.
 */
export const grpcHygieneSuite: Suite = {
  name: 'grpc-hygiene',
  description:
    'Score p50/p99 of one client while 100k streams are held open and another client never reads; leaked connections reclaimed',
  async run({ quick }) {
    const p = {
      phaseSeconds: quick ? 1 : 10,
      holdConnections: quick ? 10 : 100,
      streamsPerConnection: STREAMS_PER_CONNECTION,
      rate: RATE,
      neverReadRate: 1_000,
      maxConnectionIdleMs: quick ? 1_000 : 2_000,
      // Longer than opening the held streams + one measured phase (grpc-js jitters the age by ±10 %), so that they
      // are held for the whole phase; short enough for the run to see them reclaimed.
      maxConnectionAgeMs: quick ? 4_000 : 60_000,
      maxConnectionAgeGraceMs: quick ? 300 : 1_000,
    };
    const embedded = await startEmbedded(
      embeddedConfig({
        api: {
          maxConnectionIdleMs: p.maxConnectionIdleMs,
          maxConnectionAgeMs: p.maxConnectionAgeMs,
          maxConnectionAgeGraceMs: p.maxConnectionAgeGraceMs,
        },
      }),
    );
    const load = await LoadClient.start();
    const hostile = await HostileClient.start();
    try {
      const requests = residentPrompts(embedded);
      const address = embedded.grpcAddress;
      const connections = () => embedded.api.grpc.connections();
      const baselineConnections = await connections();

      /**
       * Client A: fresh connections (so that their own age never ends a phase), warm-up, the measured phase, close.
       * What stalled the server meanwhile (GC, event-loop delay) and the machine's load average (2 shared cores: other
       * processes' work shows up as tail latency) are recorded with it.
       */
      const measureA = async (): Promise<PhaseResult & { loadAverage: number }> => {
        await load.setup(address, requests);
        await load.run({ type: 'open', seconds: 0.5, rate: p.rate });
        const pauses = watchPauses();
        const result = await load.run({ type: 'open', seconds: p.phaseSeconds, rate: p.rate });
        Object.assign(result, pauses.stop());
        await load.close();
        return { ...result, loadAverage: loadavg()[0] };
      };
      /** Waits until the server's connection count is back at the baseline; the seconds since `since`. */
      const reclaimed = async (since: number, timeoutMs: number): Promise<{ seconds: number; connections: number }> => {
        const deadline = performance.now() + timeoutMs;
        let open = await connections();
        while (open > baselineConnections && performance.now() < deadline) {
          await sleep(100);
          open = await connections();
        }
        return { seconds: (performance.now() - since) / 1000, connections: open };
      };

      await load.setup(address, requests);
      await load.run({ type: 'closed', seconds: quick ? 1 : 2, concurrency: 16 }); // warm-up (JIT, index tables)
      await load.close();
      const alone = await measureA();

      // (a) Held streams, and one idle connection beside them.
      const rssBefore = process.memoryUsage().rss;
      const holdStarted = performance.now();
      const held = (await hostile.request(
        { type: 'hold', address, connections: p.holdConnections, streams: p.streamsPerConnection },
        'held',
      )) as HoldTally;
      const holdOpenSeconds = (performance.now() - holdStarted) / 1000;
      await hostile.request({ type: 'idle', address }, 'started');
      const openWhileHeld = await connections();
      const serverOpenCalls = embedded.api.grpc.guard.openCalls;
      const rssHeld = process.memoryUsage().rss;
      const evictedBefore = embedded.api.grpc.guard.callsEvicted;
      const whileHeld = await measureA();
      const evictedForA = embedded.api.grpc.guard.callsEvicted - evictedBefore;
      const afterHeld = (await hostile.request({ type: 'status' }, 'status')) as HostileStatus;
      const heldReclaim = await reclaimed(holdStarted, 2 * p.maxConnectionAgeMs);

      // (b) A client that sends Score calls and never reads the answers.
      const neverStarted = performance.now();
      await hostile.request({ type: 'neverRead', address, rate: p.neverReadRate, request: requests[0] }, 'started');
      await sleep(1_000); // its windows fill, its streams pile up to maxConcurrentStreams
      const whileNeverRead = await measureA();
      const neverStatus = (await hostile.request({ type: 'stopSending' }, 'status')) as HostileStatus;
      const neverReclaim = await reclaimed(neverStarted, 2 * p.maxConnectionAgeMs);
      // How long each hostile connection lived, from its connect to the server closing it (measured by the client).
      const lives = (await hostile.request({ type: 'status' }, 'status')) as HostileStatus;

      const aloneAgain = await measureA();
      // Client A has closed its sockets; the server sees them close a moment later.
      const finalConnections = (await reclaimed(performance.now(), 2_000)).connections;
      const ratio = (x: PhaseResult) => x.p99 / alone.p99;
      return {
        parameters: {
          ...p,
          candidates: CANDIDATES,
          promptTokens: PROMPT_TOKENS,
          clientA:
            'child process speaking HTTP/2 itself (grpc-load-client.mjs), 4 connections, open loop, latency from the scheduled send time',
          heldStreams:
            'raw HTTP/2: HEADERS of a Score call, no message, no END_STREAM (a unary call left pending), from a second child process',
          neverReading: 'node:http2 session, every stream paused: no response read, no WINDOW_UPDATE sent',
          maxConcurrentStreams: embedded.config.api.maxConcurrentStreams,
          maxOpenCalls: embedded.config.api.maxOpenCalls,
        },
        figures: {
          aloneP50: { value: alone.p50, unit: 'ms' },
          aloneP99: { value: alone.p99, unit: 'ms' },
          heldStreamsAttempted: { value: held.opened, unit: 'streams' },
          // As the hostile client counts them: opened minus RST_STREAM frames received.
          heldStreams: { value: held.opened - held.reset, unit: 'streams' },
          heldStreamsRefused: { value: held.reset, unit: 'streams' },
          // The server's own count of open calls once the held streams were sent (the bound, api.maxOpenCalls).
          serverOpenCallsWhileHeld: {
            value: serverOpenCalls,
            unit: 'calls',
            goal: `≤ ${embedded.config.api.maxOpenCalls}`,
          },
          heldStreamsOpenSeconds: { value: holdOpenSeconds, unit: 's' },
          heldConnectionsOpen: { value: openWhileHeld, unit: 'connections' },
          heldServerRssMiB: { value: (rssHeld - rssBefore) / 2 ** 20, unit: 'MiB' },
          // 1: every held connection was still open when the phase ended (else the age came first: raise it).
          heldStillOpenAfterPhase: { value: afterHeld.hold.closed === 0 ? 1 : 0, unit: 'bool', goal: '≥ 1' },
          heldCallsResetToAdmitA: { value: evictedForA, unit: 'calls' },
          whileHeldP50: { value: whileHeld.p50, unit: 'ms' },
          whileHeldP99: { value: whileHeld.p99, unit: 'ms' },
          whileHeldP99Ratio: { value: ratio(whileHeld), unit: '×' },
          neverReadCallsSent: { value: neverStatus.neverRead.sent, unit: 'calls' },
          neverReadCallsCompleted: { value: neverStatus.neverRead.completed, unit: 'calls' },
          neverReadCallsStuck: { value: neverStatus.neverRead.open, unit: 'calls' },
          neverReadDataBytes: { value: neverStatus.neverRead.dataBytes, unit: 'B' },
          whileNeverReadP50: { value: whileNeverRead.p50, unit: 'ms' },
          whileNeverReadP99: { value: whileNeverRead.p99, unit: 'ms' },
          whileNeverReadP99Ratio: { value: ratio(whileNeverRead), unit: '×' },
          aloneAgainP50: { value: aloneAgain.p50, unit: 'ms' },
          aloneAgainP99: { value: aloneAgain.p99, unit: 'ms' },
          noiseP99Ratio: { value: ratio(aloneAgain), unit: '×' },
          ...phaseStalls({ alone, whileHeld, whileNeverRead, aloneAgain }),
          idleConnectionLifeSeconds: { value: (lives.idle.lifeMs ?? NaN) / 1000, unit: 's' },
          heldConnectionsMaxLifeSeconds: {
            value: lives.hold.closed === p.holdConnections ? lives.hold.maxLifeMs / 1000 : NaN,
            unit: 's',
          },
          neverReadConnectionLifeSeconds: { value: (lives.neverRead.lifeMs ?? NaN) / 1000, unit: 's' },
          heldServerCountBackToBaselineSeconds: { value: heldReclaim.seconds, unit: 's' },
          neverReadServerCountBackToBaselineSeconds: { value: neverReclaim.seconds, unit: 's' },
          connectionsAfterReclaim: {
            value: Math.max(heldReclaim.connections, neverReclaim.connections),
            unit: 'connections',
            goal: `≤ ${baselineConnections}`,
          },
          connectionsAtEnd: { value: finalConnections, unit: 'connections', goal: `≤ ${baselineConnections}` },
          errors: {
            value: alone.errors + whileHeld.errors + whileNeverRead.errors + aloneAgain.errors,
            unit: 'calls',
            goal: '≤ 0',
          },
        } satisfies Record<string, Figure>,
      };
    } finally {
      hostile.exit();
      load.exit();
      await embedded.stop();
    }
  },
};

/** The resident prompts (bench/support/resident-prompts.ts) as Score requests over the 16 candidates. */
function residentPrompts(embedded: EmbeddedService): object[] {
  return indexResidentPrompts(embedded, rng(5)).map((tokens) => ({
    model: 'model',
    tokens: { tokenIds: tokens },
    candidates: BENCH_CANDIDATES,
  }));
}

/** Per phase: the server's longest GC pause and event-loop delay p99, and the machine's 1-minute load average. */
function phaseStalls(phases: Record<string, PhaseResult & { loadAverage: number }>): Record<string, Figure> {
  const out: Record<string, Figure> = {};
  for (const [name, r] of Object.entries(phases)) {
    out[`${name}ServerGcMaxPause`] = { value: r.serverGcMaxMs ?? NaN, unit: 'ms' };
    out[`${name}ServerLoopDelayP99`] = { value: r.serverLoopDelayP99Ms ?? NaN, unit: 'ms' };
    out[`${name}MachineLoadAverage`] = { value: r.loadAverage, unit: '' };
  }
  return out;
}

interface HoldTally {
  opened: number;
  reset: number;
  goaway: number;
  closed: number;
  maxLifeMs: number;
}

interface HostileStatus {
  hold: HoldTally & { held: number };
  neverRead: {
    sent: number;
    responses: number;
    completed: number;
    refused: number;
    dataBytes: number;
    open: number;
    closed: boolean;
    lifeMs: number | null;
  };
  idle: { closed: boolean; lifeMs: number | null };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The hostile clients' child process (h2-hostile-client.mjs), driven over its IPC channel. */
class HostileClient {
  private constructor(private readonly child: ChildProcess) {}

  static async start(): Promise<HostileClient> {
    return new HostileClient(await forkChild(new URL('./h2-hostile-client.mjs', import.meta.url)));
  }

  request(message: object, expected: string): Promise<unknown> {
    return requestChild<{ result?: unknown }>(this.child, 'hostile client', message, expected).then((m) => m.result);
  }

  exit(): void {
    if (this.child.connected) this.child.send({ type: 'exit' });
  }
}
