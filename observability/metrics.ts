/**
 * Prometheus metrics of every role (SPEC.md section 6, issue 7): the one place where metric
 * families are defined. `createMetrics()` builds a fresh prom-client `Registry` with every family
 * registered once; the role wiring (cli/roles.ts) makes one per process and hands each component
 * the narrow recorder it needs (`metrics.ingest`, `metrics.pipeline`, ...). Components take the
 * recorder as an optional dependency, so tests and CLI commands can run without metrics.
 *
 * Naming (https://prometheus.io/docs/practices/naming/): prefix `quotaflow_`, snake_case, the
 * unit as suffix (`_seconds`, `_messages`, `_ratio`), counters end in `_total`. Labels take values
 * from closed sets (result codes, reasons, table and pipeline names) or from config (quota ids,
 * consumer groups, topics, partitions): never tenant or user ids, which are unbounded.
 * Closed label sets are created at zero up front, so `rate()` and `increase()` see a series from
 * the first scrape instead of only after the first event.
 *
 * The families, their units and labels are listed in docs/observability.md.
 *
 * This module imports only prom-client and types from `domain/` and `ingest/`: `ingest/`,
 * `processors/` and `api/` may all import it without `processors/` reaching `api/`.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { DeadLetterReason } from '../domain/dead-letter.ts';
import type { ExclusionReason } from '../domain/routing.ts';
import type { IngestErrorCode } from '../ingest/http/errors.ts';

/** Prefix of every quotaflow metric, prom-client's default metrics included. */
export const METRIC_PREFIX = 'quotaflow_';

/** Result of one `POST /v1/events` request: `accepted` (202) or the error code it answered with. */
export type IngestRequestResult = 'accepted' | IngestErrorCode;

// Records keyed by the unions: the compiler fails when a union member is missing here.
const INGEST_REQUEST_RESULTS: Record<IngestRequestResult, true> = {
  accepted: true,
  unauthorized: true,
  invalid_body: true,
  payload_too_large: true,
  too_many_events: true,
  too_many_records: true,
  unsupported_media_type: true,
  unavailable: true,
  overloaded: true,
  not_found: true,
  bad_request: true,
  internal: true,
};
const DEAD_LETTER_REASONS: Record<DeadLetterReason, true> = { invalid_json: true, invalid_event: true, conflicting_duplicate: true };
const EXCLUSION_REASONS: Record<ExclusionReason, true> = {
  quota_exhausted: true,
  breaker_open: true,
  compliance_mismatch: true,
  missing_capability: true,
  error_rate_over_limit: true,
};

/** Tables the usage store writes (processors/clickhouse-writer.ts). */
export const WRITTEN_TABLES = ['usage_events', 'dead_letters'] as const;
export type WrittenTable = (typeof WRITTEN_TABLES)[number];

/** Pipelines of the processor role (processors/index.ts). */
export const PIPELINES = ['usage', 'dead-letters'] as const;

/** HTTP ingest (ingest/http/events.route.ts). */
export interface IngestMetrics {
  /** One request answered, by result. */
  request(result: IngestRequestResult): void;
  /** Events of one request acknowledged by the transport: accepted (usage topic) and rejected (dead-letter topic). */
  events(accepted: number, rejected: number): void;
  /** One request's produce (usage + dead-letter messages) took `seconds`; `ok` false when it failed or timed out. */
  produced(seconds: number, ok: boolean): void;
  /** Request body bytes now held by the ingest routes' admission bound (ingest/http/in-flight.ts). */
  inFlightBytes(bytes: number): void;
}

/** Processor batches (processors/index.ts). */
export interface PipelineMetrics {
  /** One batch of `messages` handled (decoded, written, acknowledged) in `seconds` by `pipeline`. */
  batch(pipeline: string, messages: number, seconds: number): void;
}

/** Rows the processor's store wrote (processors/store-metrics.ts). */
export interface StoreMetrics {
  /** `rows` acknowledged by ClickHouse in `table`. */
  written(table: WrittenTable, rows: number): void;
  /** Dead letters written, by reason. */
  deadLetter(reason: DeadLetterReason, count: number): void;
  /** Age of a batch's oldest event when its rows were acknowledged, seconds (see docs/observability.md). */
  freshness(seconds: number): void;
}

/** Quota alert evaluator (processors/quota-alerts.ts). */
export interface QuotaMetrics {
  /** Used / limit of a quota at its last measurement (0..1, above 1 when over the limit). */
  utilisation(quotaId: string, ratio: number): void;
}

/** `POST /v1/route` (api/routes/route.route.ts). */
export interface RoutingMetrics {
  /** One routing decision: chosen or none, and one count per excluded candidate by reason. */
  decision(d: { readonly chosen: unknown; readonly excluded: ReadonlyArray<{ readonly reason: ExclusionReason }> }): void;
}

/** Anomaly detection (processors/anomaly/detection.ts). */
export interface AnomalyMetrics {
  /** Create the series of these kinds at zero (the kinds live with the detectors). */
  declareKinds(kinds: readonly string[]): void;
  /** An anomaly episode opened or resolved. */
  changed(kind: string, change: 'opened' | 'resolved'): void;
}

/** A consumer group's lag on one partition, messages (observability/kafka-lag.ts). */
export interface PartitionLag {
  topic: string;
  partition: number;
  lag: number;
}

/** Consumer lag collector (observability/kafka-lag.ts). */
export interface LagMetrics {
  /** Replace the lag series of `group` with `lags` (partitions that disappeared are dropped). */
  set(group: string, lags: readonly PartitionLag[]): void;
  /** A collection round failed (the previous values are kept). */
  failed(): void;
}

export interface Metrics {
  readonly registry: Registry;
  readonly ingest: IngestMetrics;
  readonly pipeline: PipelineMetrics;
  readonly store: StoreMetrics;
  readonly quotas: QuotaMetrics;
  readonly routing: RoutingMetrics;
  readonly anomalies: AnomalyMetrics;
  readonly lag: LagMetrics;
}

export interface MetricsOptions {
  /**
   * Also collect prom-client's process and Node.js metrics (CPU, resident memory, heap, event-loop
   * lag, GC), named with the `quotaflow_` prefix. Default true; tests of one family turn it off.
   */
  defaultMetrics?: boolean;
}

/** Latency buckets in seconds, 1 ms to 10 s (HTTP-side work: produce acknowledgements). */
const FAST_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Batch durations in seconds, 5 ms to 60 s (a batch waits for ClickHouse; a slow server or retries stretch it). */
const BATCH_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Batch sizes in messages, up to config pipeline.batch_max_messages' maximum range of interest. */
const BATCH_MESSAGES = [1, 10, 50, 100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000];
/** Event age in seconds, 100 ms to a day: live traffic lands under a few seconds, replays of old files far above. */
const FRESHNESS_SECONDS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3_600, 86_400];

/**
 * Build a registry with every quotaflow metric family. Call once per process (two registries in
 * one process are independent: tests build one each).
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const name = (n: string) => `${METRIC_PREFIX}${n}`;

  const ingestRequests = new Counter({
    name: name('ingest_requests_total'),
    help: 'POST /v1/events requests answered, by result (accepted, or the error code of the answer).',
    labelNames: ['result'] as const,
    registers,
  });
  const ingestEvents = new Counter({
    name: name('ingest_events_total'),
    help: 'Events of answered POST /v1/events requests acknowledged by the transport: accepted (usage topic) or rejected (dead-letter topic).',
    labelNames: ['result'] as const,
    registers,
  });
  const ingestInFlight = new Gauge({
    name: name('ingest_in_flight_bytes'),
    help: 'Request body bytes held by admitted ingest requests (POST /v1/events and /v1/contexts); bounded by http.max_in_flight_bytes.',
    registers,
  });
  const produceDuration = new Histogram({
    name: name('ingest_produce_duration_seconds'),
    help: "Time for the transport to acknowledge one ingest request's messages (usage and dead-letter topics), seconds; outcome ok or error.",
    labelNames: ['outcome'] as const,
    buckets: FAST_SECONDS,
    registers,
  });
  const batchSize = new Histogram({
    name: name('processor_batch_size_messages'),
    help: 'Messages per batch handled by a processor pipeline.',
    labelNames: ['pipeline'] as const,
    buckets: BATCH_MESSAGES,
    registers,
  });
  const flushDuration = new Histogram({
    name: name('processor_flush_duration_seconds'),
    help: 'Time to handle one batch, from delivery to ClickHouse acknowledgement (decode, id lookup, transform, insert), seconds.',
    labelNames: ['pipeline'] as const,
    buckets: BATCH_SECONDS,
    registers,
  });
  const rowsWritten = new Counter({
    name: name('rows_written_total'),
    help: 'Rows acknowledged by ClickHouse, by table (a replayed batch is counted again; the table de-duplicates it).',
    labelNames: ['table'] as const,
    registers,
  });
  const deadLetters = new Counter({
    name: name('dead_letters_total'),
    help: 'Dead letters written to the dead_letters table, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const freshness = new Histogram({
    name: name('event_freshness_seconds'),
    help: "Per batch: acknowledgement time of the batch's usage_events insert minus its oldest event's timestamp, seconds.",
    buckets: FRESHNESS_SECONDS,
    registers,
  });
  const quotaUtilisation = new Gauge({
    name: name('quota_utilisation_ratio'),
    help: 'Used / limit of each configured quota at its last measurement by the alert evaluator (1 = limit reached).',
    labelNames: ['quota_id'] as const,
    registers,
  });
  const routingDecisions = new Counter({
    name: name('routing_decisions_total'),
    help: 'POST /v1/route decisions, by outcome: chosen (a candidate was picked) or none (every candidate excluded).',
    labelNames: ['outcome'] as const,
    registers,
  });
  const routingExclusions = new Counter({
    name: name('routing_exclusions_total'),
    help: 'Candidates excluded by POST /v1/route decisions, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const anomalies = new Counter({
    name: name('anomalies_total'),
    help: 'Anomaly episodes opened or resolved by the detectors, by kind.',
    labelNames: ['kind', 'change'] as const,
    registers,
  });
  const consumerLag = new Gauge({
    name: name('consumer_lag_messages'),
    help: 'Messages not yet committed by a consumer group on a partition: end offset minus committed offset.',
    labelNames: ['group', 'topic', 'partition'] as const,
    registers,
  });
  const lagErrors = new Counter({
    name: name('consumer_lag_collect_errors_total'),
    help: 'Consumer lag collection rounds that failed (the lag gauge keeps its previous values).',
    registers,
  });
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });

  // Zero series for the closed label sets.
  for (const result of Object.keys(INGEST_REQUEST_RESULTS)) ingestRequests.inc({ result }, 0);
  for (const result of ['accepted', 'rejected']) ingestEvents.inc({ result }, 0);
  for (const table of WRITTEN_TABLES) rowsWritten.inc({ table }, 0);
  for (const reason of Object.keys(DEAD_LETTER_REASONS)) deadLetters.inc({ reason }, 0);
  for (const outcome of ['chosen', 'none']) routingDecisions.inc({ outcome }, 0);
  for (const reason of Object.keys(EXCLUSION_REASONS)) routingExclusions.inc({ reason }, 0);
  lagErrors.inc(0);
  for (const outcome of ['ok', 'error']) produceDuration.zero({ outcome });
  for (const pipeline of PIPELINES) {
    batchSize.zero({ pipeline });
    flushDuration.zero({ pipeline });
  }

  // Bound children for the per-request paths (routing runs at thousands of calls per second).
  const chosen = routingDecisions.labels('chosen');
  const none = routingDecisions.labels('none');
  const excludedBy = new Map(Object.keys(EXCLUSION_REASONS).map((r) => [r, routingExclusions.labels(r)]));
  const eventsAccepted = ingestEvents.labels('accepted');
  const eventsRejected = ingestEvents.labels('rejected');
  const produceOk = produceDuration.labels('ok');
  const produceError = produceDuration.labels('error');
  /** Lag label sets last set per group, to drop partitions that are gone. */
  const lagSeries = new Map<string, Array<{ group: string; topic: string; partition: string }>>();

  return {
    registry,
    ingest: {
      request: (result) => ingestRequests.inc({ result }),
      events(accepted, rejected) {
        if (accepted > 0) eventsAccepted.inc(accepted);
        if (rejected > 0) eventsRejected.inc(rejected);
      },
      produced: (seconds, ok) => (ok ? produceOk : produceError).observe(seconds),
      inFlightBytes: (bytes) => ingestInFlight.set(bytes),
    },
    pipeline: {
      batch(pipeline, messages, seconds) {
        batchSize.observe({ pipeline }, messages);
        flushDuration.observe({ pipeline }, seconds);
      },
    },
    store: {
      written(table, rows) {
        if (rows > 0) rowsWritten.inc({ table }, rows);
      },
      deadLetter(reason, count) {
        if (count > 0) deadLetters.inc({ reason }, count);
      },
      freshness: (seconds) => freshness.observe(seconds),
    },
    quotas: {
      utilisation: (quotaId, ratio) => quotaUtilisation.set({ quota_id: quotaId }, ratio),
    },
    routing: {
      decision(d) {
        (d.chosen === null || d.chosen === undefined ? none : chosen).inc();
        for (const e of d.excluded) excludedBy.get(e.reason)?.inc();
      },
    },
    anomalies: {
      declareKinds(kinds) {
        for (const kind of kinds) for (const change of ['opened', 'resolved']) anomalies.inc({ kind, change }, 0);
      },
      changed: (kind, change) => anomalies.inc({ kind, change }),
    },
    lag: {
      set(group, lags) {
        for (const labels of lagSeries.get(group) ?? []) consumerLag.remove(labels);
        const series = lags.map((l) => {
          const labels = { group, topic: l.topic, partition: String(l.partition) };
          consumerLag.set(labels, l.lag);
          return labels;
        });
        lagSeries.set(group, series);
      },
      failed: () => lagErrors.inc(),
    },
  };
}
