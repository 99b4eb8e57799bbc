import type { ChildProcess } from 'node:child_process';
import { forkChild, requestChild } from './child.js';
import type { PhaseResult } from '../suites/grpc.js';

/** HTTP/2 connections the client spreads its calls over (a few picker replicas). */
export const CONNECTIONS = 4;

/** The load generator child process, driven over its IPC channel (also used by the grpc-hygiene suite). */
export class LoadClient {
  private constructor(private readonly child: ChildProcess) {}

  static async start(): Promise<LoadClient> {
    return new LoadClient(await forkChild(new URL('../suites/grpc-load-client.mjs', import.meta.url)));
  }

  /** Connects to `address`, serialises `requests`; resolves with the DATA bytes of the response to requests[0]. */
  setup(address: string, requests: object[]): Promise<number> {
    return this.request({ type: 'setup', address, connections: CONNECTIONS, requests }, 'ready').then(
      (m) => (m as { bytes: number }).bytes,
    );
  }

  run(
    phase: { type: 'closed'; seconds: number; concurrency: number } | { type: 'open'; seconds: number; rate: number },
  ) {
    return this.request(phase, 'result').then((m) => (m as { result: PhaseResult }).result);
  }

  /** Closes the client's connections (setup opens new ones). */
  close(): Promise<void> {
    return this.request({ type: 'close' }, 'closed').then(() => undefined);
  }

  exit(): void {
    if (this.child.connected) this.child.send({ type: 'exit' });
  }

  private request(message: object, expected: string): Promise<unknown> {
    return requestChild<{ result?: unknown }>(this.child, 'grpc load client', message, expected);
  }
}
