import { Random } from './random.js';
import { APPROXIMATE_DEFAULTS, chunkHashes, type ChunkOptions } from './text-chunks.js';
import type { SimulatedRequest } from './workloads.js';

export const POLICIES = [
  'precise',
  'cache+load',
  'load',
  'approximate',
  'round-robin',
  'random',
  'least-loaded',
] as const;
export type PolicyName = (typeof POLICIES)[number];

/** What a policy knows when it routes one request. */
export interface RouteInput {
  request: SimulatedRequest;
  endpoints: readonly string[];
  /** Seconds of queued prefill work per endpoint (the load signal a router scrapes). */
  backlog(endpoint: string): number;
  /** Requests routed to the endpoint so far. */
  routedTo(endpoint: string): number;
}

export interface RoutingPolicy {
  readonly name: PolicyName;
  /** True when its decisions read the indexer, so the run waits until every published event is applied. */
  readonly readsIndex: boolean;
  choose(input: RouteInput): Promise<string>;
  /** Told after every decision (the approximate policy learns only from these). */
  routed(request: SimulatedRequest, endpoint: string): void;
  /** Told when a request's prefill has finished, in virtual time, with the tokens its endpoint had cached. */
  prefillDone?(request: SimulatedRequest, cachedTokens: number): Promise<void>;
}

/** The service's Select and its reservation lifecycle, as the Select-backed policies use them. */
export interface SelectCalls {
  select(
    request: SimulatedRequest,
    candidates: readonly string[],
    policy: 'cache+load' | 'load',
  ): Promise<{ endpoint: string; reservationId: string }>;
  prefillDone(reservationId: string, cachedTokens: number): Promise<void>;
}

/** Matched prefix blocks per endpoint for a request, as the indexer's Score answers them. */
export type PrefixScores = (request: SimulatedRequest, endpoints: readonly string[]) => Promise<Map<string, number>>;

export interface PolicyOptions {
  seed: number;
  /**
   * The load term of the cache-aware policies: only endpoints with at most this many seconds of queued prefill more
   * than the least loaded one are considered, so a popular prefix cannot pile requests onto one endpoint.
   */
  loadGuardSeconds: number;
  /** The approximate policy's LRU capacity per endpoint, in chunks. */
  approximateCapacity: number;
  /**
   * Router replicas the approximate policy runs in: requests are spread over them in turn and each learns only from
   * its own decisions (the precise policy's index is shared, so replicas do not change it).
   */
  routerReplicas: number;
  approximate: ChunkOptions;
}

export function createPolicy(
  name: PolicyName,
  options: PolicyOptions,
  score: PrefixScores,
  select?: SelectCalls,
): RoutingPolicy {
  switch (name) {
    case 'precise':
      return new PrecisePolicy(options.loadGuardSeconds, score);
    case 'cache+load':
    case 'load':
      if (!select) throw new Error(`policy ${name} needs the service's Select`);
      return new SelectPolicy(name, select);
    case 'approximate': {
      const replicas = Array.from(
        { length: options.routerReplicas },
        () => new ApproximatePolicy(options.loadGuardSeconds, options.approximateCapacity, options.approximate),
      );
      return replicas.length === 1 ? replicas[0] : new ReplicatedPolicy('approximate', replicas);
    }
    case 'round-robin':
      return new RoundRobinPolicy();
    case 'random':
      return new RandomPolicy(options.seed);
    case 'least-loaded':
      return new LeastLoadedPolicy();
  }
}

/** Endpoints within the load guard of the least loaded one. */
export function withinLoadGuard(input: RouteInput, guardSeconds: number): string[] {
  const min = Math.min(...input.endpoints.map((e) => input.backlog(e)));
  return input.endpoints.filter((e) => input.backlog(e) <= min + guardSeconds);
}

/**
 * The endpoint with the highest score; ties go to the lighter backlog, then to the endpoint that was sent fewer
 * requests (so that new prefixes spread over idle endpoints), then to the earlier one.
 */
export function best(endpoints: readonly string[], score: (e: string) => number, input: RouteInput): string {
  let pick = endpoints[0];
  for (const e of endpoints.slice(1)) {
    const d = score(e) - score(pick);
    const load = d === 0 ? input.backlog(e) - input.backlog(pick) : 0;
    if (d > 0 || (d === 0 && load < 0) || (d === 0 && load === 0 && input.routedTo(e) < input.routedTo(pick))) pick = e;
  }
  return pick;
}

/** This service: Score against the index built from the endpoints' own KV events. */
class PrecisePolicy implements RoutingPolicy {
  readonly name = 'precise';
  readonly readsIndex = true;

  constructor(
    private readonly guard: number,
    private readonly score: PrefixScores,
  ) {}

  async choose(input: RouteInput): Promise<string> {
    const eligible = withinLoadGuard(input, this.guard);
    const matched = await this.score(input.request, input.endpoints);
    return best(eligible, (e) => matched.get(e) ?? 0, input);
  }

  routed(): void {}
}

/**
 * The service's own Select (src/api/select.ts): it prices every candidate with a predicted TTFT from its cached blocks
 * and the prefill reserved on it by earlier decisions, and reserves this one; the reservation is retired when the
 * simulated prefill finishes (PrefillComplete, then ReleaseReservation). It sees no load but its own reservations:
 * no scraped metrics, no load guard of the simulator's.
 */
class SelectPolicy implements RoutingPolicy {
  readonly readsIndex = true;
  private readonly reservations = new Map<SimulatedRequest, string>();

  constructor(
    readonly name: 'cache+load' | 'load',
    private readonly calls: SelectCalls,
  ) {}

  async choose(input: RouteInput): Promise<string> {
    const { endpoint, reservationId } = await this.calls.select(input.request, input.endpoints, this.name);
    this.reservations.set(input.request, reservationId);
    return endpoint;
  }

  routed(): void {}

  async prefillDone(request: SimulatedRequest, cachedTokens: number): Promise<void> {
    const id = this.reservations.get(request);
    if (id === undefined) throw new Error(`request ${request.id} was not selected by this policy`);
    this.reservations.delete(request);
    await this.calls.prefillDone(id, cachedTokens);
  }
}

/**
 * A text-prefix estimate per endpoint, as the Inference Extension's approximate prefix plugin keeps it: an LRU of the
 * chunk hashes of the requests it routed there (it never learns of evictions or of blocks the engine computed).
 */
class ApproximatePolicy implements RoutingPolicy {
  readonly name = 'approximate';
  readonly readsIndex = false;
  private readonly lru = new Map<string, Map<number, true>>();
  private readonly hashes = new WeakMap<SimulatedRequest, number[]>();

  constructor(
    private readonly guard: number,
    private readonly capacity: number,
    private readonly chunks: ChunkOptions = APPROXIMATE_DEFAULTS,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new Error(`approximate LRU capacity must be a positive integer, got ${capacity}`);
  }

  async choose(input: RouteInput): Promise<string> {
    const hashes = this.hashesOf(input.request);
    const eligible = withinLoadGuard(input, this.guard);
    return best(eligible, (e) => this.matched(e, hashes), input);
  }

  routed(request: SimulatedRequest, endpoint: string): void {
    let lru = this.lru.get(endpoint);
    if (!lru) this.lru.set(endpoint, (lru = new Map()));
    for (const h of this.hashesOf(request)) {
      lru.delete(h);
      lru.set(h, true);
      if (lru.size > this.capacity) lru.delete(lru.keys().next().value as number);
    }
  }

  private matched(endpoint: string, hashes: readonly number[]): number {
    const lru = this.lru.get(endpoint);
    if (!lru) return 0;
    let n = 0;
    while (n < hashes.length && lru.has(hashes[n])) n++;
    return n;
  }

  private hashesOf(request: SimulatedRequest): number[] {
    let h = this.hashes.get(request);
    if (!h) this.hashes.set(request, (h = chunkHashes(request, this.chunks)));
    return h;
  }
}

/** Several router replicas of a policy that keeps its own state: each request goes to the next replica. */
class ReplicatedPolicy implements RoutingPolicy {
  readonly readsIndex: boolean;
  private next = 0;
  private readonly chosenBy = new WeakMap<SimulatedRequest, RoutingPolicy>();

  constructor(
    readonly name: PolicyName,
    private readonly replicas: RoutingPolicy[],
  ) {
    if (replicas.length < 1) throw new Error('at least one router replica is needed');
    this.readsIndex = replicas[0].readsIndex;
  }

  async choose(input: RouteInput): Promise<string> {
    const replica = this.replicas[this.next++ % this.replicas.length];
    this.chosenBy.set(input.request, replica);
    return replica.choose(input);
  }

  routed(request: SimulatedRequest, endpoint: string): void {
    const replica = this.chosenBy.get(request);
    if (!replica) throw new Error(`request ${request.id} was not routed by this policy`);
    replica.routed(request, endpoint);
  }
}

class RoundRobinPolicy implements RoutingPolicy {
  readonly name = 'round-robin';
  readonly readsIndex = false;
  private next = 0;

  async choose(input: RouteInput): Promise<string> {
    return input.endpoints[this.next++ % input.endpoints.length];
  }

  routed(): void {}
}

class RandomPolicy implements RoutingPolicy {
  readonly name = 'random';
  readonly readsIndex = false;
  private readonly random: Random;

  constructor(seed: number) {
    this.random = new Random(seed ^ 0x5eed);
  }

  async choose(input: RouteInput): Promise<string> {
    return input.endpoints[this.random.between(0, input.endpoints.length - 1)];
  }

  routed(): void {}
}

/** The lightest backlog; ties (idle endpoints) go to the one that was sent fewest requests. */
class LeastLoadedPolicy implements RoutingPolicy {
  readonly name = 'least-loaded';
  readonly readsIndex = false;

  async choose(input: RouteInput): Promise<string> {
    return best(input.endpoints, (e) => -input.backlog(e), input);
  }

  routed(): void {}
}
