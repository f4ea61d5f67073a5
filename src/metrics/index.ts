/**
 * Prometheus metrics (text exposition format 0.0.4) for `GET /metrics`, through prom-client.
 * Gauges that describe the present (recordings by status, capacity) are read when scraped;
 * counters are incremented where things happen.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CapacitySnapshot } from "../dispatch/index.js";

/** Where the scrape-time gauges read from. */
export interface MetricsSource {
  /** Name of this worker (label `worker`). */
  worker: string;
  /** Recordings in the store by status. */
  statusCounts(): Promise<Record<string, number>>;
  /** Recordings running on this worker. */
  active(): number;
  /** Recordings waiting on this worker. */
  queued(): number;
  /** Media segments closed by an encoder but not yet stored. */
  pendingSegments(): number;
  capacity(): CapacitySnapshot | undefined;
  /** What the running recordings' media watchers see (none where nothing records). */
  meetings?(): { recording: string; participants: number; audio: boolean; video: boolean }[];
  /** The running video recordings' encoder frame counts over their stored segments (store/types.ts `FrameCounts`). */
  frames?(): { recording: string; encoded: number; duplicated: number; dropped: number }[];
  /** Warm capture stacks waiting for a recording (`capture.warmBrowsers`; absent: no pool). */
  warmStacks?(): number;
}

/** meetrec's metrics; see each field. */
export class Metrics {
  readonly registry = new Registry();
  /** Recordings continued in a new period after their worker (or meetrec) was lost; label `reason`: restart | failover | handover. */
  readonly failovers: Counter<"reason">;
  /** Media not captured between periods, seconds; label `reason`: the new period's reason. */
  readonly lostMediaSeconds: Counter<"reason">;
  /** Delivery attempts; labels `kind` (webhook, spool, s3, email, talk:…) and `outcome` (ok | retry). */
  readonly deliveryAttempts: Counter<"kind" | "outcome">;
  /** Unfinished recordings queued again because no live job carried them; label `job_state`: missing | failed | completed | unknown. */
  readonly requeued: Counter<"job_state">;
  /** Time to make one media segment durable in the segment store, seconds; label `store`. */
  readonly segmentStoreSeconds: Histogram<"store">;
  /** Video frames written by this machine's encoders into stored segments; label `kind`: encoded | duplicated | dropped (of the encoded, repeats because the grab fell behind; grabs thrown away). */
  readonly videoFrames: Counter<"kind">;
  /** Capture sessions started on this machine; label `stack`: warm (taken from the pool) | cold (started for the recording). */
  readonly captureStarts: Counter<"stack">;

  constructor(source: MetricsSource) {
    const r = this.registry;
    const worker = source.worker;
    collectDefaultMetrics({ register: r, prefix: "meetrec_" });
    this.failovers = new Counter({ name: "meetrec_failovers_total", help: "Recordings continued in a new period after meetrec or their worker was lost", labelNames: ["reason"], registers: [r] });
    this.lostMediaSeconds = new Counter({ name: "meetrec_lost_media_seconds_total", help: "Media not captured between periods, seconds", labelNames: ["reason"], registers: [r] });
    this.deliveryAttempts = new Counter({ name: "meetrec_delivery_attempts_total", help: "Delivery attempts by target kind and outcome (retry = failed, will be retried)", labelNames: ["kind", "outcome"], registers: [r] });
    this.requeued = new Counter({ name: "meetrec_jobs_requeued_total", help: "Unfinished recordings queued again because no live job carried them", labelNames: ["job_state"], registers: [r] });
    this.videoFrames = new Counter({ name: "meetrec_video_frames_total", help: "Video frames in stored segments by kind: encoded, duplicated (the grab fell behind; the picture stands still), dropped", labelNames: ["kind"], registers: [r] });
    new Gauge({
      name: "meetrec_recording_video_frames", help: "Each running recording's video frames over its stored segments by kind: encoded, duplicated, dropped", labelNames: ["recording", "kind"], registers: [r],
      collect() {
        this.reset();
        for (const f of source.frames?.() ?? []) for (const kind of ["encoded", "duplicated", "dropped"] as const) this.set({ recording: f.recording, kind }, f[kind]);
      },
    });
    this.segmentStoreSeconds = new Histogram({
      name: "meetrec_segment_store_seconds", help: "Time to make one media segment durable, seconds", labelNames: ["store"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [r],
    });
    new Gauge({
      name: "meetrec_recordings", help: "Recordings in the store by status", labelNames: ["status"], registers: [r],
      async collect() {
        this.reset();
        for (const [status, n] of Object.entries(await source.statusCounts())) this.set({ status }, n);
      },
    });
    this.captureStarts = new Counter({ name: "meetrec_capture_starts_total", help: "Capture sessions started on this worker: on a warm stack from the pool, or cold", labelNames: ["stack"], registers: [r] });
    new Gauge({ name: "meetrec_warm_stacks", help: "Warm capture stacks (display, sink, browser) waiting for a recording", labelNames: ["worker"], registers: [r], collect() { if (source.warmStacks) this.set({ worker }, source.warmStacks()); } });
    new Gauge({ name: "meetrec_recordings_active", help: "Recordings running on this worker", labelNames: ["worker"], registers: [r], collect() { this.set({ worker }, source.active()); } });
    new Gauge({ name: "meetrec_recordings_queued", help: "Recordings waiting on this worker", labelNames: ["worker"], registers: [r], collect() { this.set({ worker }, source.queued()); } });
    new Gauge({ name: "meetrec_segments_pending", help: "Media segments closed but not yet stored", labelNames: ["worker"], registers: [r], collect() { this.set({ worker }, source.pendingSegments()); } });
    new Gauge({ name: "meetrec_capacity_cpu_budget_cores", help: "CPU budget for recordings, cores", labelNames: ["worker"], registers: [r], collect() { const c = source.capacity(); if (c) this.set({ worker }, c.cpuBudget); } });
    new Gauge({
      name: "meetrec_capacity_cost_cores", help: "Cores one recording costs now (video: a 1280×720@30 one): measured here once recordings ran, else as configured", labelNames: ["worker", "kind"], registers: [r],
      collect() { const c = source.capacity(); if (c) for (const kind of ["video", "audio"] as const) this.set({ worker, kind }, c.cost[kind]); },
    });
    new Gauge({ name: "meetrec_capacity_cpu_left_cores", help: "CPU budget not booked by running recordings, cores", labelNames: ["worker"], registers: [r], collect() { const c = source.capacity(); if (c) this.set({ worker }, c.cpuLeft); } });
    new Gauge({
      name: "meetrec_meeting_participants", help: "Remote media sources (participants) live now in each running recording's meeting", labelNames: ["recording"], registers: [r],
      collect() {
        this.reset();
        for (const m of source.meetings?.() ?? []) this.set({ recording: m.recording }, m.participants);
      },
    });
    new Gauge({
      name: "meetrec_meeting_media_flowing", help: "1 when remote media of this kind flows now in each running recording's meeting", labelNames: ["recording", "kind"], registers: [r],
      collect() {
        this.reset();
        for (const m of source.meetings?.() ?? []) for (const kind of ["audio", "video"] as const) this.set({ recording: m.recording, kind }, m[kind] ? 1 : 0);
      },
    });
    new Gauge({
      name: "meetrec_can_accept", help: "1 when one more recording of this kind fits now", labelNames: ["worker", "kind"], registers: [r],
      collect() {
        const c = source.capacity();
        if (c) for (const kind of ["video", "audio"] as const) this.set({ worker, kind }, c.canAccept[kind] ? 1 : 0);
      },
    });
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
