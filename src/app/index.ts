/**
 * The embedded application: store + in-process dispatch + workers on this machine, behind
 * one small interface that the API and the CLI use.
 *
 * Over 300 lines, and holding too many jobs: issue 10 splits it into a recorder node and thin hosts.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import { dirname, join } from "node:path";
import { SharedPulse, defaultPulseDir, killRegisteredProcesses, stepOrigins, type CaptureSession, type JoinStep } from "../capture/index.js";
import { RequestGuard, browserEgressFor, egressError } from "../egress/index.js";
import { redactUrl } from "../util/redact.js";
import { TALK_VIDEO, mediaRoot, segmentBucket, type Config } from "../config/index.js";
import { Capacity, InProcessDispatcher, JobReconciler, QueueDispatcher, type Dispatcher, type Readiness } from "../dispatch/index.js";
import { Metrics } from "../metrics/index.js";
import { hostname } from "node:os";
import { RecordingBucket, RecordingMedia, captureOrigin, finalize, manifestSegmentCount, recordingDir, type Manifest, type SegmentMirror } from "../media/index.js";
import { DataDirLock } from "./lock.js";
import { RecordingStore, TERMINAL, type Delivery, type DeliveryAttempt, type Recording, type RecordingEvent, type RecordingStatus } from "../store/index.js";
import { DeliveryService, checkDeliveryInputs, deleteFromS3, presignedUrl } from "../delivery/index.js";
import { toView } from "./view.js";
import { ALLOW_ALL_BACKEND, canonicalBackendUrl, platformAdapter, type TalkInfo } from "../talk/index.js";
import { MeetrecError, errorMessage } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { RecordingJob, finalizeRecording, type StopReason } from "../worker/index.js";
import { RecordingRequest, resolveOptions } from "./request.js";
import { MAX_METADATA_KEYS, checkMetadataEditable, checkMetadataKeys } from "./metadata.js";

export { RecordingRequest, resolveOptions, checkOrigin } from "./request.js";
export { MetadataPatchRequest, RESERVED_METADATA_KEYS } from "./metadata.js";

export interface AppOptions {
  /** SQLite file; default `{dataDir}/meetrec.db`. */
  databaseFile?: string;
  /** Observes each capture session (tests, benchmarks). */
  onSession?(id: string, session: CaptureSession): void;
  /**
   * What to do with recordings that were live when the previous run ended: `resume` them
   * (`serve`, default) or `finalize` what they have (`meetrec recover`).
   */
  recovery?: "resume" | "finalize";
  /** Command name recorded in the data directory's lock (`serve`, `recover`). */
  command?: string;
  /**
   * `embedded` (default): store, dispatch and recording in this process. `api`: stateless
   * cluster front (PostgreSQL store, BullMQ queue; workers record).
   */
  role?: "embedded" | "api";
  /** Clock of the Talk replay window (tests move it forward); default: the system clock. */
  now?: () => Date;
}

/** What {@link App.recover} did with one recording (or orphaned media directory). */
export interface RecoveryAction {
  id: string;
  action: "resumed" | "finalized" | "queued" | "delivering" | "orphan_finalized" | "orphan_failed";
  status?: RecordingStatus;
  /** For orphans: the media directory, and the file made from it. */
  dir?: string;
  file?: string;
  error?: string;
}

/** The running application. */
export class App {
  private readonly pulse: SharedPulse;
  /** Serializes Talk starts so that two concurrent starts of one conversation make one recording. */
  private talkLock: Promise<void> = Promise.resolve();
  private retentionTimer?: NodeJS.Timeout;
  readonly dispatcher: Dispatcher;
  /** The in-process pool (embedded role only). */
  private readonly local?: InProcessDispatcher;
  private leaderTimer?: NodeJS.Timeout;
  private reconcileTimer?: NodeJS.Timeout;
  readonly metrics: Metrics;
  private lock?: DataDirLock;
  /** What start-up recovery did (see {@link App.recover}). */
  recovered: RecoveryAction[] = [];
  /** Capture sessions running now, by recording id. */
  private readonly sessions = new Map<string, CaptureSession>();
  /** Bucket mirrors of the recordings running now. */
  private readonly mirrors = new Map<string, SegmentMirror>();

  readonly delivery: DeliveryService;

  private constructor(readonly config: Config, readonly store: RecordingStore, readonly log: Logger, private readonly opts: AppOptions, queue?: QueueDispatcher) {
    if (config.talk.allowAll && !config.backends[ALLOW_ALL_BACKEND]) {
      log.warn("talk.allowAll is on: any Talk instance that knows the common secret may record (development only)");
      config.backends[ALLOW_ALL_BACKEND] = { allowedOrigins: [], allowedRequestOrigins: ["public"], delivery: { webhooks: [] }, talk: { url: "http://talk-any.invalid/", secret: config.talk.secret!, maxMessageSize: 1024, skipVerify: false } };
    }
    this.pulse = new SharedPulse(config.capture.pulseDir ?? defaultPulseDir(), config.capture.pulseaudioPath);
    const capacity = Capacity.fromConfig(config);
    if (queue) {
      this.dispatcher = queue;
    } else {
      this.local = new InProcessDispatcher(config.concurrency, (id) => this.runJob(id), log, capacity);
      this.dispatcher = this.local;
    }
    this.metrics = new Metrics({
      worker: hostname(),
      statusCounts: () => store.countByStatus(),
      active: () => this.local?.active ?? 0,
      queued: () => this.local?.waiting ?? 0,
      pendingSegments: () => [...this.sessions.values()].reduce((n, s) => n + s.pendingSegments, 0)
        + [...this.mirrors.values()].reduce((n, m) => n + m.backlog, 0),
      capacity: () => (this.local ? capacity.snapshot() : undefined),
    });
    this.delivery = new DeliveryService({
      config, store, log, describe: (rec) => toView(rec, this.baseUrl), filePath: (rec) => this.localFile(rec), fileUrl: (rec) => this.fileUrl(rec),
      onAttempt: (kind, ok) => this.metrics.deliveryAttempts.inc({ kind, outcome: ok ? "ok" : "retry" }),
    });
  }

  /** Absolute base URL used in webhook payloads and sidecars (`publicUrl`, else derived from `listen`). */
  get baseUrl(): string {
    if (this.config.publicUrl) return this.config.publicUrl.replace(/\/$/, "");
    return this.config.listen.startsWith("unix:") ? "http://localhost" : `http://${this.config.listen}`;
  }

  /**
   * Opens the store and takes up the work a previous run left (see {@link App.recover}).
   * @throws MeetrecError `store_failed`.
   */
  static async start(config: Config, log: Logger, opts: AppOptions = {}): Promise<App> {
    if (opts.role === "api") return App.startApi(config, log, opts);
    const lock = DataDirLock.acquire(config.dataDir, opts.command ?? "serve");
    let store: RecordingStore;
    try {
      store = await RecordingStore.openSqlite(opts.databaseFile ?? join(config.dataDir, "meetrec.db"));
    } catch (err) {
      lock.release();
      throw err;
    }
    const app = new App(config, store, log, opts);
    app.lock = lock;
    app.recovered = await app.recover(opts.recovery ?? "resume");
    app.delivery.start();
    app.retentionTimer = setInterval(() => void app.sweepRetention().catch(() => undefined), config.retentionSweepIntervalMs);
    app.retentionTimer.unref();
    return app;
  }

  /**
   * The cluster's API role: PostgreSQL store, BullMQ queue, no recording here. Deliveries run
   * in one API process at a time (a leader lock on Redis).
   * @throws MeetrecError `config_invalid` when the cluster settings are missing; `store_failed`.
   */
  private static async startApi(config: Config, log: Logger, opts: AppOptions): Promise<App> {
    const c = config.cluster;
    if (!c.redisUrl || !c.postgresUrl) throw new MeetrecError("config_invalid", "serve --role api needs cluster.redisUrl and cluster.postgresUrl (MEETREC_CLUSTER__REDIS_URL, MEETREC_CLUSTER__POSTGRES_URL)");
    if (!config.segments.s3) throw new MeetrecError("config_invalid", "cluster mode needs a segment bucket (segments.s3): workers share media through it");
    const store = await RecordingStore.openPostgres(c.postgresUrl);
    let app: App | undefined;
    const queue = new QueueDispatcher(c.redisUrl, c.queue, log, async (id) => {
      for (let i = 0; i < 600; i++) {
        const r = await store.get(id);
        if (!r || TERMINAL.includes(r.status) || r.status === "delivering") return;
        await new Promise((res) => setTimeout(res, 200));
      }
    });
    app = new App(config, store, log, opts, queue);
    const holder = `${hostname()}-${process.pid}`;
    const a = app;
    // The leading API process sends the deliveries and re-queues recordings that lost their job.
    const reconciler = new JobReconciler(queue.queue, store, log, (r) => a.metrics.requeued.inc({ job_state: r.jobState }));
    let leading = false;
    let sweeping = false;
    const lead = async () => {
      const now = await queue.bus.lead("delivery", holder, 10_000).catch(() => false);
      if (now && !leading) { log.info("this API process runs the deliveries and the job reconciler"); a.delivery.start(); }
      if (!now && leading) { log.info("another API process runs the deliveries now"); a.delivery.pause(); }
      leading = now;
    };
    await lead();
    app.leaderTimer = setInterval(() => void lead(), 3000);
    app.leaderTimer.unref();
    app.reconcileTimer = setInterval(() => {
      if (!leading || sweeping) return;
      sweeping = true;
      void reconciler.sweep().finally(() => { sweeping = false; });
    }, c.reconcileIntervalMs);
    app.reconcileTimer.unref();
    return app;
  }

  /**
   * Takes up what a previous run (killed, crashed, restarted) left. Capture processes it left
   * running are killed first. Recordings that were live (`starting`, `recording`) resume —
   * rejoin the meeting and continue in a new period — when `mode` is `resume` and at least one
   * segment duration of their limit is left; otherwise they are finalized from what exists
   * (`limit_reached`, or `stopped` in `finalize` mode). Those that were already ending
   * (`stopping`, `finalizing`) are finalized; `delivering` ones go back to the delivery loop;
   * `queued` ones are dispatched after the resumed ones. Media directories the store does not
   * know (a lost database) are finalized in place. Nothing in the data directory is deleted.
   */
  async recover(mode: "resume" | "finalize" = "resume"): Promise<RecoveryAction[]> {
    const done: RecoveryAction[] = [];
    const unfinished = await this.store.listUnfinished();
    const queued: Recording[] = [];
    for (const rec of unfinished) {
      const log = this.log.child({ recordingId: rec.id });
      const root = mediaRoot(this.config, rec.backend);
      const killed = killRegisteredProcesses(join(root, "work", rec.id));
      if (killed.length) log.warn({ killed: killed.map((k) => `${k.role}:${k.pid}`) }, "killed capture processes left by the previous run");
      if (rec.status === "queued") {
        queued.push(rec);
        done.push({ id: rec.id, action: "queued", status: rec.status });
        continue;
      }
      if (rec.status === "delivering") {
        await this.delivery.ensureFileDeliveries(rec); // the delivery loop takes it from here
        done.push({ id: rec.id, action: "delivering", status: rec.status });
        continue;
      }
      const media = await RecordingMedia.open(root, rec.id, { mode: rec.options.mode, segmentSeconds: this.config.capture.segmentSeconds });
      const origin = captureOrigin(media.current);
      const leftMs = origin === undefined ? Infinity : origin + rec.options.maxDurationSeconds * 1000 - Date.now();
      const live = rec.status === "starting" || rec.status === "recording";
      if (live && mode === "resume" && leftMs >= this.config.capture.segmentSeconds * 1000) {
        log.warn({ status: rec.status, leftSeconds: Math.round(leftMs / 1000) }, "recording was interrupted; resuming it");
        await this.store.addEvent(rec.id, "interrupted", "meetrec stopped during the recording; rejoining the meeting");
        this.dispatcher.submit(rec.id, rec.options);
        done.push({ id: rec.id, action: "resumed", status: rec.status });
        continue;
      }
      const endReason = live ? (leftMs < this.config.capture.segmentSeconds * 1000 ? "limit_reached" : "stopped") : rec.endReason ?? "stopped";
      log.warn({ status: rec.status, endReason, mode }, "recording was interrupted; finalizing what was captured");
      await this.store.addEvent(rec.id, "interrupted", mode === "finalize" ? "Finalized by meetrec recover from the media captured" : "meetrec stopped while the recording was ending; finalizing the media captured");
      let cur = rec;
      if (live) cur = await this.store.transition(rec.id, "stopping", { reason: "interrupted" });
      const final = await finalizeRecording({ config: this.config, store: this.store, log }, cur, media, { endReason, abortWhenEmpty: true });
      done.push({ id: rec.id, action: "finalized", status: final.status });
    }
    done.push(...await this.finalizeOrphans());
    for (const rec of queued) this.dispatcher.submit(rec.id, rec.options);
    return done;
  }

  /** Media directories with a manifest but no recording in the store: finalized in place. */
  private async finalizeOrphans(): Promise<RecoveryAction[]> {
    const out: RecoveryAction[] = [];
    const roots = new Set([this.config.dataDir, ...Object.keys(this.config.backends).map((b) => mediaRoot(this.config, b))]);
    for (const root of roots) {
      let ids: string[];
      try {
        ids = await readdir(join(root, "recordings"));
      } catch {
        continue;
      }
      for (const id of ids) {
        const dir = recordingDir(root, id);
        if (!existsSync(join(dir, "manifest.json")) || await this.store.get(id)) continue;
        const log = this.log.child({ recordingId: id });
        try {
          const media = await RecordingMedia.open(root, id, { mode: "video", segmentSeconds: this.config.capture.segmentSeconds });
          if (manifestSegmentCount(media.current) === 0 || (await readdir(dir)).some((f) => /^recording\.(mp4|m4a)$/.test(f))) continue;
          killRegisteredProcesses(join(root, "work", id));
          const file = await finalize(media.dir, media.current, { ffmpegPath: this.config.capture.ffmpegPath, ffprobePath: this.config.capture.ffprobePath });
          log.warn({ dir, file: file.path }, "media without a recording in the store finalized in place");
          out.push({ id, action: "orphan_finalized", dir, file: file.path });
        } catch (err) {
          log.error({ dir, err: errorMessage(err) }, "orphaned media could not be finalized");
          out.push({ id, action: "orphan_failed", dir, error: errorMessage(err) });
        }
      }
    }
    return out;
  }

  private runJob(id: string) {
    let job: RecordingJob | undefined;
    let pendingStop: StopReason | undefined; // a stop that arrives before the job exists is kept, not lost
    const done = (async () => {
      const rec = await this.store.get(id);
      if (!rec || !["queued", "starting", "recording"].includes(rec.status)) return;
      job = new RecordingJob(rec, {
        config: this.config, store: this.store, pulse: () => this.pulse.get(), log: this.log,
        onSession: (sid, session) => {
          this.sessions.set(sid, session);
          this.opts.onSession?.(sid, session);
        },
        ...this.metrics.jobHooks("restart"),
        onMirror: (mid, mirror) => this.mirrors.set(mid, mirror),
        adapterFor: (r) => platformAdapter(this.config, r),
      }, { resume: rec.status !== "queued" });
      if (pendingStop) job.stop(pendingStop);
      try {
        await job.run();
      } finally {
        this.sessions.delete(id);
        this.mirrors.delete(id);
      }
    })();
    return {
      stop: (reason: StopReason) => (job ? job.stop(reason) : void (pendingStop ??= reason)),
      done,
    };
  }

  /**
   * Creates a recording for `backend` and queues it. What its delivery targets will need from
   * the metadata (spool sub-directory, owner's address) is checked now, so that a recording
   * that could never be delivered is not made.
   * @throws MeetrecError `validation_failed` | `origin_not_allowed` | `egress_refused` (nothing is created).
   */
  async create(backend: string, req: RecordingRequest): Promise<Recording> {
    const options = resolveOptions(this.config, backend, req);
    const metadata = req.metadata ?? {};
    checkMetadataKeys(metadata);
    checkDeliveryInputs(this.config, { backend, options, metadata });
    // The egress policy at the door (the browser enforces it again on every request it makes).
    const guard = new RequestGuard(browserEgressFor(this.config, backend));
    for (const url of [options.url, ...stepOrigins(options.join as JoinStep[])]) {
      const refusal = await guard.navigationRefusal(url);
      if (refusal) throw egressError(redactUrl(url), refusal);
    }
    const rec = await this.store.create({ id: randomUUID(), backend, options, metadata });
    this.log.info({ recordingId: rec.id, backend, origin: new URL(options.url).origin, mode: options.mode, browser: options.browser }, "recording created");
    await this.dispatcher.submit(rec.id, options);
    return rec;
  }

  /**
   * The backend a Talk request comes from (`Talk-Recording-Backend`, trailing `/` ignored), with
   * the secret to check it; with `talk.allowAll`, any URL maps to the synthetic backend
   * `talk-any` and the common secret.
   */
  talkBackendFor(url: string): { backend: string; secret: string; maxMessageSize: number } | undefined {
    const want = canonicalBackendUrl(url);
    for (const [name, b] of Object.entries(this.config.backends)) {
      if (b.talk && name !== ALLOW_ALL_BACKEND && canonicalBackendUrl(b.talk.url) === want) return { backend: name, secret: b.talk.secret, maxMessageSize: b.talk.maxMessageSize };
    }
    const any = this.config.backends[ALLOW_ALL_BACKEND]?.talk;
    return any ? { backend: ALLOW_ALL_BACKEND, secret: any.secret, maxMessageSize: any.maxMessageSize } : undefined;
  }

  /**
   * Accepts `random` (a request's verified `Talk-Recording-Random`) for `backend` once within
   * `talk.replayWindowSeconds`: `false` means it was already used — a replayed request, to be
   * refused. Shared by every API process on the same store.
   * @throws the store's error when the database cannot be reached.
   */
  acceptTalkRandom(backend: string, random: string): Promise<boolean> {
    return this.store.rememberTalkRandom(backend, random, this.config.talk.replayWindowSeconds * 1000, this.opts.now?.() ?? new Date());
  }

  /** Releases a random {@link acceptTalkRandom} took, for a request answered with a 5xx (Talk retries it with the same random). */
  releaseTalkRandom(backend: string, random: string): Promise<void> {
    return this.store.forgetTalkRandom(backend, random);
  }

  /** The live recording of Talk conversation `token` for `backend`, if any. */
  private async liveTalkRecording(backend: string, backendUrl: string, token: string): Promise<Recording | undefined> {
    return (await this.store.listUnfinished()).find((r) => {
      const t = r.metadata.talk as TalkInfo | undefined;
      return r.backend === backend && t?.token === token && t.backendUrl === backendUrl && !["finalizing", "delivering"].includes(r.status);
    });
  }

  /**
   * Talk asked to record conversation `token` (protocol §1 start). Idempotent: a second start
   * while one is live does nothing. Video uses the backend's size, else Talk's 1920×1080.
   */
  async talkStart(backend: string, backendUrl: string, token: string, start: { status: 1 | 2; owner: string; actor: { type: string; id: string } }): Promise<Recording> {
    const run = this.talkLock.then(async () => {
      const live = await this.liveTalkRecording(backend, backendUrl, token);
      if (live) return live;
      const b = this.config.backends[backend];
      const talk: TalkInfo = { token, backendUrl, owner: start.owner, actor: start.actor, status: start.status };
      const options = {
        url: `${backendUrl}/index.php/call/${token}/recording`, join: [], mode: start.status === 2 ? ("audio" as const) : ("video" as const),
        browser: "chromium" as const, video: { ...this.config.video, ...TALK_VIDEO, ...b?.video },
        maxDurationSeconds: Math.min(this.config.maxDurationSeconds, b?.maxDurationSeconds ?? Infinity),
        ...(b?.talk?.skipVerify ? { acceptInsecureCerts: true } : {}),
      };
      const rec = await this.store.create({ id: randomUUID(), backend, options, metadata: { talk } });
      this.log.info({ recordingId: rec.id, backend, talkToken: token, mode: options.mode }, "Talk asked for a recording");
      await this.dispatcher.submit(rec.id, options);
      return rec;
    });
    this.talkLock = run.then(() => undefined, () => undefined);
    return run;
  }

  /** Talk asked to stop conversation `token`; false when nothing of it is live (→ 404). */
  async talkStop(backend: string, backendUrl: string, token: string, actor?: { type: string; id: string }): Promise<boolean> {
    const live = await this.liveTalkRecording(backend, backendUrl, token);
    if (!live) return false;
    await this.store.mergeMetadata(live.id, { talk: { ...(live.metadata.talk as TalkInfo), stopActor: actor ?? null } });
    await this.stop(live.id);
    return true;
  }

  /** @throws MeetrecError `not_found` (also for another backend's recording). */
  async get(id: string, backend?: string): Promise<Recording> {
    const rec = await this.store.get(id);
    if (!rec || (backend && rec.backend !== backend)) throw new MeetrecError("not_found", `No recording ${id}`);
    return rec;
  }

  list(opts: { status?: RecordingStatus; backend?: string; limit?: number }): Promise<Recording[]> {
    return this.store.list(opts);
  }

  events(id: string): Promise<RecordingEvent[]> {
    return this.store.events(id);
  }

  /**
   * Asks a recording to stop. Queued → `aborted` at once; live → stops in the background.
   * Already ended → returned unchanged.
   */
  async stop(id: string, backend?: string): Promise<Recording> {
    const rec = await this.get(id, backend);
    if (TERMINAL.includes(rec.status)) return rec;
    if (!this.local) await this.store.requestStop(id, "stopped"); // whichever worker holds it, now or after a failover
    const outcome = await this.dispatcher.stop(id, "stopped");
    if (outcome === "dequeued" || (outcome === "unknown" && rec.status === "queued")) {
      return this.store.transition(id, "aborted", { reason: "stopped_while_queued", message: "Stopped before it started", endReason: "stopped" });
    }
    return (await this.store.get(id))!;
  }

  /** Stops `id` if live, waits for it to end, then removes its files and its row. */
  async delete(id: string, backend?: string): Promise<void> {
    const rec = await this.get(id, backend);
    if (!TERMINAL.includes(rec.status)) {
      if (!this.local) await this.store.requestStop(id, "deleted");
      if (await this.dispatcher.stop(id, "deleted") === "dequeued" || rec.status === "queued") {
        await this.store.transition(id, "aborted", { reason: "deleted", endReason: "deleted" }).catch(() => undefined);
      }
      await this.dispatcher.settled(id);
    }
    const s3 = this.config.backends[rec.backend]?.delivery.s3;
    const loc = (await this.store.get(id))?.file?.s3;
    if (s3 && loc) await deleteFromS3(s3, loc); // throws (and deletes nothing) when the bucket cannot be reached
    const segments = segmentBucket(this.config, rec.backend);
    if (segments) {
      const b = new RecordingBucket(segments, id);
      await b.deleteSegments();
      const stored = (await this.store.get(id))?.file?.stored;
      if (stored) await b.deleteFinal(stored.key);
    }
    await rm(join(this.config.dataDir, "cache", id), { recursive: true, force: true });
    await rm(this.mediaDir(rec), { recursive: true, force: true });
    await this.store.delete(id);
    this.log.info({ recordingId: id }, "recording deleted");
  }

  /**
   * Changes a recording's metadata (merge: a key set to `null` is removed) while its delivery
   * has not ended, checked with the rules of {@link App.create}; the deliveries use it from
   * their next attempt on (`redeliver` makes that now). Returns the recording as it is now.
   * @throws MeetrecError `not_found`; `conflict` when its delivery has ended (completed,
   * aborted, failed without a file); `validation_failed` (nothing is changed).
   */
  async patchMetadata(id: string, backend: string | undefined, patch: Record<string, string | number | boolean | null>): Promise<Recording> {
    await this.get(id, backend);
    checkMetadataKeys(patch);
    const rec = await this.store.patchMetadata(id, patch, (cur, next) => {
      checkMetadataEditable(cur);
      if (Object.keys(next).length > MAX_METADATA_KEYS) {
        throw new MeetrecError("validation_failed", `The metadata would have ${Object.keys(next).length} keys; at most ${MAX_METADATA_KEYS} are allowed (remove keys by setting them to null)`, { details: { field: "metadata" } });
      }
      checkDeliveryInputs(this.config, { ...cur, metadata: next });
    });
    this.log.info({ recordingId: id, keys: Object.keys(patch) }, "metadata changed");
    return rec;
  }

  /** The deliveries of a recording and the attempts made (with `lastAttempts`: only the last that many of each delivery). */
  async deliveries(id: string, lastAttempts?: number): Promise<{ deliveries: Delivery[]; attempts: DeliveryAttempt[] }> {
    return { deliveries: await this.store.deliveries(id), attempts: await this.store.deliveryAttempts(id, lastAttempts) };
  }

  /**
   * Delivers a recording again by hand ({@link DeliveryService.redeliver}); a recording whose
   * delivery was given up goes back to `delivering`. Returns how many deliveries are due.
   * @throws MeetrecError `not_ready` when it has nothing to deliver yet (no file and no
   * delivery); `conflict` while an earlier redelivery has not been attempted yet.
   */
  async redeliver(id: string, backend?: string): Promise<number> {
    const rec = await this.get(id, backend);
    const n = await this.delivery.redeliver(rec);
    if (n === 0) throw new MeetrecError("not_ready", `Recording ${id} has nothing to deliver (status ${rec.status}; no file target or no file yet)`);
    return n;
  }

  /**
   * Removes the media (local directory and bucket object) of every ended recording older than
   * its backend's `retentionDays`, as of `now`. The row stays, with a `retention_purged` event,
   * so the history remains; unfinished deliveries are given up. Returns the ids purged.
   */
  async sweepRetention(now = new Date()): Promise<string[]> {
    const purged: string[] = [];
    for (const [backend, b] of Object.entries(this.config.backends)) {
      if (!b.retentionDays) continue;
      for (const rec of await this.store.expired(backend, new Date(now.getTime() - b.retentionDays * 86400_000))) {
        try {
          if (b.delivery.s3 && rec.file?.s3) await deleteFromS3(b.delivery.s3, rec.file.s3);
          await rm(this.mediaDir(rec), { recursive: true, force: true });
          const why = `Media removed by retention (${b.retentionDays} days after the end)`;
          await this.store.dropFile(rec.id, why);
          await this.store.addEvent(rec.id, "retention_purged", why, { file: rec.file?.name, bucket: rec.file?.s3 ? `s3://${rec.file.s3.bucket}/${rec.file.s3.key}` : null });
          this.log.info({ recordingId: rec.id, backend, retentionDays: b.retentionDays }, "retention: media removed");
          purged.push(rec.id);
        } catch (err) {
          this.log.error({ recordingId: rec.id, err: (err as Error).message }, "retention: could not remove media; will try again at the next sweep");
        }
      }
    }
    return purged;
  }

  /** Download URL of the file: a presigned bucket URL once the S3 delivery succeeded, else undefined (the API serves it). */
  async fileUrl(rec: Recording): Promise<string | undefined> {
    const s3 = this.config.backends[rec.backend]?.delivery.s3;
    if (!s3 || !rec.file?.s3) return undefined;
    return presignedUrl(s3, rec.file.s3, `${rec.id}-${rec.file.name}`);
  }

  /**
   * Absolute path of the finished file.
   * @throws MeetrecError `not_ready` when there is none yet; `not_found` when it is gone from
   * the disk (the message names no local path — it reaches API clients; the log has the path).
   */
  filePath(rec: Recording): string {
    if (!rec.file) throw new MeetrecError("not_ready", `Recording ${rec.id} has no file yet (status ${rec.status}); wait for status completed`);
    const path = join(this.mediaDir(rec), rec.file.name);
    if (!existsSync(path)) {
      this.log.warn({ recordingId: rec.id, path }, "the finished file is gone from the media directory");
      throw new MeetrecError("not_found", `The file of recording ${rec.id} is gone from the server's media directory (removed outside meetrec); ask the server's operator`);
    }
    return path;
  }

  /**
   * A local path of the finished file for deliveries: the file itself, or (cluster: the file is
   * in the segment bucket) a copy downloaded once to `{dataDir}/cache/{id}/`.
   * @throws MeetrecError `not_ready` | `not_found`; the SDK's error when the bucket fails.
   */
  async localFile(rec: Recording): Promise<string> {
    if (!rec.file?.stored) return this.filePath(rec);
    const path = join(this.config.dataDir, "cache", rec.id, rec.file.name);
    if (existsSync(path)) return path;
    const { body } = await this.openStoredFile(rec);
    await mkdir(dirname(path), { recursive: true });
    await pipeline(body, createWriteStream(`${path}.partial`));
    await rename(`${path}.partial`, path);
    return path;
  }

  /** The finished file from the segment bucket (cluster), optionally a byte range. */
  async openStoredFile(rec: Recording, range?: string): Promise<{ body: Readable; length?: number; contentRange?: string }> {
    const cfg = segmentBucket(this.config, rec.backend);
    if (!rec.file?.stored || !cfg) throw new MeetrecError("not_found", `The file of recording ${rec.id} is not in a bucket`);
    return new RecordingBucket(cfg, rec.id).openFinal(rec.file.name, range);
  }

  /** The segment bucket's manifest of a recording (what is uploaded so far), if there is a bucket and one. */
  async remoteManifest(rec: Pick<Recording, "id" | "backend">): Promise<Manifest | undefined> {
    const cfg = segmentBucket(this.config, rec.backend);
    return cfg ? new RecordingBucket(cfg, rec.id).getManifest() : undefined;
  }

  /** A stream of a segment from the recording's segment bucket, or undefined when it has none. */
  async openRemoteSegment(rec: Pick<Recording, "id" | "backend">, rel: string): Promise<Readable | undefined> {
    const cfg = segmentBucket(this.config, rec.backend);
    return cfg ? new RecordingBucket(cfg, rec.id).open(rel) : undefined;
  }

  /** Directory of a recording's media: `{backend or global dataDir}/recordings/{id}`. */
  mediaDir(rec: Pick<Recording, "id" | "backend">): string {
    return recordingDir(mediaRoot(this.config, rec.backend), rec.id);
  }

  /** Whether a video recording could start now, and the capacity (for /readyz). */
  readiness(): Promise<Readiness> {
    return this.dispatcher.readiness();
  }

  /** Stops every live recording (finalizing them), then closes the store and the sound daemon if we started it. */
  async close(): Promise<void> {
    clearInterval(this.retentionTimer);
    clearInterval(this.leaderTimer);
    clearInterval(this.reconcileTimer);
    const left = await this.dispatcher.close();
    for (const id of left) await this.store.transition(id, "aborted", { reason: "shutdown", endReason: "stopped" }).catch(() => undefined);
    await this.delivery.close();
    await this.pulse.close();
    await this.store.close();
    this.lock?.release();
  }
}
