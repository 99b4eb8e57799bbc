/**
 * A counter family on /metrics, declared by the module that keeps the counts (beside them), so a count is written in
 * one place with its metric: the owner increments plain numbers on the hot path, and the service registers every
 * owner's table in one loop (`Metrics.counterFamilies`), read at scrape time and exported with TYPE counter.
 */
export interface CounterFamily<C> {
  /** The family's name without the service prefix; it ends in `_total`. */
  name: string;
  help: string;
  /** The label of a family counted by reason or outcome; null for one series. */
  label: string | null;
  /** The family's current values from the owner's counts (label value → count; '' for the one series). */
  read(counts: C): Record<string, number>;
}
