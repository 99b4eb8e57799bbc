/**
 * The ZMQ sockets of the write path that are open now, so that they can all be closed synchronously before a thread
 * ends: zeromq.js aborts the whole process when a worker thread exits with a socket still open (zeromq/zeromq.js
 * issue #411, "ZeroMQ doesn't exit cleanly within a worker_thread"; reproduced here with 6.8: a thrown error,
 * `process.exit` and `terminate()` alike). The index thread's last-resort handler calls `closeOpenSockets`.
 */
interface Closable {
  readonly closed: boolean;
  close(): void;
}

const open = new Set<Closable>();

/** Registers a socket just created; returns it. */
export function trackSocket<T extends Closable>(socket: T): T {
  open.add(socket);
  return socket;
}

/** Forgets a socket that was closed. */
export function untrackSocket(socket: Closable): void {
  open.delete(socket);
}

/** Closes every tracked socket now (synchronously); returns how many were still open. */
export function closeOpenSockets(): number {
  let closed = 0;
  for (const socket of open) {
    if (!socket.closed) {
      socket.close();
      closed++;
    }
  }
  open.clear();
  return closed;
}
