/**
 * Endpoint names ↔ small integer ids. An index entry stores its endpoint in 16 bits, so at most 65,536 endpoints are
 * registered at once; ids of released endpoints are handed out again (most recently released first).
 */

export const MAX_ENDPOINTS = 1 << 16;

export class EndpointRegistry {
  private readonly ids = new Map<string, number>();
  private readonly names: (string | undefined)[] = [];
  private readonly released: number[] = [];

  constructor(private readonly limit: number = MAX_ENDPOINTS) {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_ENDPOINTS) {
      throw new RangeError(`endpoint limit must be an integer in [1, ${MAX_ENDPOINTS}], got ${limit}`);
    }
  }

  /** Id of a registered endpoint, or undefined (never registers). */
  find(name: string): number | undefined {
    return this.ids.get(name);
  }

  /** Id of an endpoint; registers new names. Throws a RangeError when every id is taken. */
  intern(name: string): number {
    let id = this.ids.get(name);
    if (id !== undefined) return id;
    if (this.released.length > 0) id = this.released.pop() as number;
    else if (this.names.length < this.limit) id = this.names.length;
    else throw new RangeError(`too many endpoints registered at once (max ${this.limit})`);
    this.ids.set(name, id);
    this.names[id] = name;
    return id;
  }

  name(id: number): string {
    const n = this.names[id];
    if (n === undefined) throw new RangeError(`unknown endpoint id ${id}`);
    return n;
  }

  isRegistered(id: number): boolean {
    return this.names[id] !== undefined;
  }

  /** Forget an endpoint; its id may be reused by the next new name. */
  release(id: number): void {
    const n = this.names[id];
    if (n === undefined) return;
    this.ids.delete(n);
    this.names[id] = undefined;
    this.released.push(id);
  }

  /** Registered endpoints. */
  get size(): number {
    return this.ids.size;
  }

  /** Every id in use is below this bound. */
  get idBound(): number {
    return this.names.length;
  }

  get full(): boolean {
    return this.released.length === 0 && this.names.length >= this.limit;
  }

  clear(): void {
    this.ids.clear();
    this.names.length = 0;
    this.released.length = 0;
  }
}
