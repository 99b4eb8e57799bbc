import { baseIdentity, metricsUrlFromTemplate } from './metrics-url.js';
import type { KnownEndpoint } from './types.js';

/**
 * Which metrics page each known endpoint is scraped from: AddEndpoint's metrics_url for its identity (covering its
 * `@dp<r>` ranks), else load.scrape.urlTemplate. Shared by the in-loop scraper and the main-thread side of the
 * scrape worker (which resolves the URLs and hands the worker finished targets).
 */
export class ScrapeRoster {
  /** AddEndpoint's metrics_url per endpoint identity. */
  private readonly overrides = new Map<string, string>();

  constructor(
    private readonly urlTemplate: string,
    private readonly allowHostnames = false,
  ) {}

  setMetricsUrl(endpoint: string, url: string | null): void {
    if (url) this.overrides.set(endpoint, url);
    else this.overrides.delete(endpoint);
  }

  forget(endpoint: string): void {
    this.overrides.delete(endpoint);
  }

  /**
   * The known endpoints that have a page, each with its URL (a resolved `url` is kept). A metrics_url outlives no
   * endpoint it was given for (endpoints also leave by file reload, lease loss, staleness): unknown ones are dropped.
   */
  resolve(known: readonly KnownEndpoint[]): (KnownEndpoint & { url: string })[] {
    const ids = new Set(known.map((k) => k.endpoint));
    for (const endpoint of this.overrides.keys()) if (!ids.has(endpoint)) this.overrides.delete(endpoint);
    const out: (KnownEndpoint & { url: string })[] = [];
    for (const k of known) {
      const url = k.url ?? this.urlOf(k.endpoint);
      if (url !== null) out.push({ ...k, url });
    }
    return out;
  }

  private urlOf(endpoint: string): string | null {
    return (
      this.overrides.get(endpoint) ??
      this.overrides.get(baseIdentity(endpoint)) ??
      metricsUrlFromTemplate(this.urlTemplate, endpoint, this.allowHostnames)
    );
  }
}
