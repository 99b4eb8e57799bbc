import { startNoopLeanServer } from '../suites/grpc.js';

/**
 * The lean server's no-op Score in a process of its own (the grpc-processes suite's ceiling, read against the service
 * run as its own process too): prints `{"port":N}` once listening, stops on SIGTERM.
 */
const server = await startNoopLeanServer();
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
process.once('SIGTERM', () => {
  void server.stop().then(() => process.exit(0));
});
