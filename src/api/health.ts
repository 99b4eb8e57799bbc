import type { ServerUnaryCall, ServerWritableStream, sendUnaryData, UntypedServiceImplementation } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/**
 * grpc.health.v1.Health with per-service statuses. Names served: "" (overall), "liveness", "readiness", and the
 * full service names. Watch streams the current status and every change.
 */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<ServerWritableStream<{ service: string }, { status: string }>>>();

  set(service: string, value: ServingStatus): void {
    if (this.statuses.get(service) === value) return;
    this.statuses.set(service, value);
    for (const call of this.watchers.get(service) ?? []) call.write({ status: value });
  }

  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Every watch ends (e.g. on shutdown). */
  endWatches(): void {
    for (const calls of this.watchers.values()) for (const call of calls) call.end();
    this.watchers.clear();
  }

  implementation(): UntypedServiceImplementation {
    return {
      check: (call: ServerUnaryCall<{ service: string }, unknown>, callback: sendUnaryData<{ status: string }>) => {
        const s = this.statuses.get(call.request.service);
        if (s === undefined) callback({ code: status.NOT_FOUND, details: `unknown service "${call.request.service}"` });
        else callback(null, { status: s });
      },
      watch: (call: ServerWritableStream<{ service: string }, { status: string }>) => {
        const name = call.request.service;
        call.write({ status: this.statuses.get(name) ?? 'SERVICE_UNKNOWN' });
        let set = this.watchers.get(name);
        if (!set) this.watchers.set(name, (set = new Set()));
        set.add(call);
        call.on('cancelled', () => set!.delete(call));
      },
    };
  }
}
