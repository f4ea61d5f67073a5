/**
 * The embedded host (`meetrec serve`, `meetrec record`, `meetrec recover`): one process with
 * the SQLite store, the in-process dispatcher, a recorder node, the deliveries and the
 * recording use cases. Composition only: every rule lives in the parts it wires.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { baseUrl, type Config } from "../config/index.js";
import { DeliveryPlanner, DeliveryService, type DeliveryTargets } from "../delivery/index.js";
import { InProcessDispatcher, type Readiness } from "../dispatch/index.js";
import { RecordingFiles } from "../media/index.js";
import type { Metrics } from "../metrics/index.js";
import { TalkService, addAllowAllBackend } from "../platforms/talk/index.js";
import { RecorderNode, Recovery, type JobObserver, type RecoveryAction } from "../recorder/index.js";
import { Recordings, Retention, toView, withBase } from "../recordings/index.js";
import { RecordingStore } from "../store/index.js";
import { planning as planningOf } from "./planning.js";
import { deliveryTargets } from "./targets.js";
import { DataDirLock } from "../util/data-dir-lock.js";
import type { Logger } from "../util/log.js";

/** How the embedded host starts. */
export interface EmbeddedOptions {
  /** SQLite file; default `{dataDir}/meetrec.db`. */
  databaseFile?: string;
  /**
   * What to do with recordings that were live when the previous run ended: `resume` them
   * (`serve`, default) or `finalize` what they have (`meetrec recover`).
   */
  recovery?: "resume" | "finalize";
  /** Command name recorded in the data directory's lock (`serve`, `recover`, `record`). */
  command?: string;
  /** Clock of the Talk replay window (tests move it forward); default: the system clock. */
  now?: () => Date;
  /** Told what every recording job does (tests). */
  observer?: JobObserver;
}

/** See module doc. {@link EmbeddedHost.start}, then {@link EmbeddedHost.close}. */
export class EmbeddedHost {
  private constructor(
    readonly config: Config, readonly log: Logger, readonly store: RecordingStore, private readonly lock: DataDirLock,
    readonly node: RecorderNode, private readonly dispatcher: InProcessDispatcher, readonly files: RecordingFiles,
    readonly targets: DeliveryTargets, readonly delivery: DeliveryService, readonly recordings: Recordings, readonly talk: TalkService, readonly retention: Retention,
    /** What start-up recovery did. */
    readonly recovered: RecoveryAction[], private readonly retentionTimer: NodeJS.Timeout,
  ) {}

  /**
   * Takes the data directory, opens the store, clears what a killed previous run left and
   * takes up its recordings ({@link Recovery.embedded}), then starts the deliveries.
   * @throws MeetrecError `conflict` when another meetrec uses the data directory; `store_failed`.
   */
  static async start(config: Config, log: Logger, opts: EmbeddedOptions = {}): Promise<EmbeddedHost> {
    addAllowAllBackend(config, log);
    const lock = DataDirLock.acquire(config.dataDir, opts.command ?? "serve");
    let store: RecordingStore;
    try {
      store = await RecordingStore.openSqlite(opts.databaseFile ?? join(config.dataDir, "meetrec.db"));
    } catch (err) {
      lock.release();
      throw err;
    }
    const files = new RecordingFiles(config, log);
    const targets = deliveryTargets(config);
    let dispatcher: InProcessDispatcher | undefined;
    const node = new RecorderNode({ config, store, log, name: hostname(), failoverReason: "restart", planning: planningOf(config, targets, false, log), queued: () => dispatcher?.waiting ?? 0, observer: opts.observer });
    dispatcher = new InProcessDispatcher(config.concurrency, node.runner(), log, node.capacity);
    const base = baseUrl(config);
    const recordings: Recordings = new Recordings({ config, store, dispatcher, targets, delivery: { redeliver: (rec) => delivery.redeliver(rec) }, files, log, storeStops: false, pauseChanged: (id) => node.job(id)?.pauseChanged() });
    const delivery = new DeliveryService({
      config, store, log, targets, describe: (rec) => toView(rec, base), withBase: (v) => withBase(v as never, base), filePath: (rec) => files.localCopy(rec), trackPaths: (rec) => files.localTracks(rec),
      fileUrl: (rec) => recordings.fileUrl(rec), onAttempt: (kind, ok) => node.metrics.deliveryAttempts.inc({ kind, outcome: ok ? "ok" : "retry" }),
    });
    new DeliveryPlanner({ store, log, targets, describe: (rec) => toView(rec, ""), queued: () => delivery.kick() });
    const talk = new TalkService({ config, store, dispatcher, stop: (id) => recordings.stop(id), log, now: opts.now });
    const retention = new Retention({ config, store, files, log });
    node.killLeftovers();
    node.startPool();
    const d = dispatcher;
    const recovered = await new Recovery({ config, store, log, plan: (rec) => node.plan(rec) })
      .embedded(opts.recovery ?? "resume", { resume: (rec) => d.submit(rec.id, rec.options), delivering: (rec) => delivery.ensureFileDeliveries(rec) });
    delivery.start();
    const timer = setInterval(() => void retention.sweep(), config.retentionSweepIntervalMs);
    timer.unref();
    return new EmbeddedHost(config, log, store, lock, node, dispatcher, files, targets, delivery, recordings, talk, retention, recovered, timer);
  }

  /** Prometheus metrics of this process. */
  get metrics(): Metrics {
    return this.node.metrics;
  }

  /** Whether a video recording could start now, and the capacity (for /readyz). */
  readiness(): Promise<Readiness> {
    return this.dispatcher.readiness();
  }

  /** Stops every live recording (finalizing them), then closes the store and the sound daemon if we started it. */
  async close(): Promise<void> {
    clearInterval(this.retentionTimer);
    const left = await this.dispatcher.close();
    for (const id of left) await this.store.transition(id, "aborted", { reason: "shutdown", endReason: "stopped" }).catch(() => undefined);
    await this.delivery.close();
    await this.node.close();
    await this.store.close();
    this.lock.release();
  }
}
