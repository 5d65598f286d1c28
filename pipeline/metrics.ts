/**
 * Metric names are flat (`component_what`, optionally with Prometheus labels in braces). Levels
 * (pending, queued, lag, last, peak, bytes, ...) are gauges; everything else counts up and stays
 * monotonic across rollbacks and worker restarts.
 */
const GAUGE = /(pending|assigned|queued|queue_depth|paused|_lag|last_|peak_|state_bytes|bytes_per|_ready|workers|rss|heap|inflight|in_flight|holding|behind|offered)/;

export function isGauge(name: string): boolean {
  return GAUGE.test(name);
}
