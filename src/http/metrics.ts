/**
 * Metrics the HTTP layer owns (the engine exposes its own through `engine.metrics()`): requests by
 * route pattern and status class, and open event streams. Labels use the route pattern
 * (`/runs/:id`), never the raw URL, so the series count stays bounded whatever clients send.
 */
import { processMetrics } from '../telemetry/metrics.ts';

export class HttpMetrics {
  readonly #requests = new Map<string, number>();

  observe(method: string, route: string, status: number, ms: number): void {
    const statusClass = `${Math.floor(status / 100)}xx`;
    const key = `${method}\u0000${route}\u0000${statusClass}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    // The duration histogram is rendered with the process's other histograms (telemetry/metrics.ts).
    processMetrics.httpRequests.observe({ method, route, status: statusClass }, ms / 1000);
  }

  render(openStreams: number): string {
    const lines: string[] = [
      '# HELP runwarden_http_requests_total HTTP requests answered, by method, route pattern and status class.',
      '# TYPE runwarden_http_requests_total counter',
    ];
    const keys = [...this.#requests.keys()].sort();
    for (const key of keys) {
      lines.push(`runwarden_http_requests_total{${labels(key)}} ${this.#requests.get(key) ?? 0}`);
    }
    lines.push(
      '# HELP runwarden_http_event_streams Open Server-Sent Events streams.',
      '# TYPE runwarden_http_event_streams gauge',
      `runwarden_http_event_streams ${openStreams}`,
    );
    return lines.join('\n') + '\n';
  }
}

function labels(key: string): string {
  const [method = '', route = '', status = ''] = key.split('\u0000');
  return `method="${esc(method)}",route="${esc(route)}",status="${esc(status)}"`;
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}
