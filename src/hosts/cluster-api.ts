/**
 * The cluster's API host (`meetrec serve --role api`): PostgreSQL store, the BullMQ queue, the
 * deliveries and the recording use cases; no recording here. One API process at a time leads
 * (sends the deliveries, runs the job reconciler). Composition only.
 */
import { hostname } from "node:os";
import { baseUrl, type Config } from "../config/index.js";
import { DeliveryPlanner, DeliveryService } from "../delivery/index.js";
import { Leadership, QueueDispatcher, type Readiness } from "../dispatch/index.js";
import { RecordingFiles } from "../media/index.js";
import { Metrics } from "../metrics/index.js";
import { TalkService, addAllowAllBackend } from "../platforms/talk/index.js";
import { Recordings, toView, withBase } from "../recordings/index.js";
import { RecordingStore } from "../store/index.js";
import { MeetrecError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { deliveryTargets } from "./targets.js";

/** See module doc. {@link ClusterApiHost.start}, then {@link ClusterApiHost.close}. */
export class ClusterApiHost {
  private constructor(
    readonly config: Config, readonly store: RecordingStore, private readonly dispatcher: QueueDispatcher, readonly files: RecordingFiles,
    readonly delivery: DeliveryService, readonly recordings: Recordings, readonly talk: TalkService, readonly metrics: Metrics,
    private readonly leadership: Leadership,
  ) {}

  /**
   * Opens the store and the queue and starts competing for the leader's duties.
   * @throws MeetrecError `config_invalid` when the cluster settings are missing; `store_failed`.
   */
  static async start(config: Config, log: Logger): Promise<ClusterApiHost> {
    const c = config.cluster;
    if (!c.redisUrl || !c.postgresUrl) throw new MeetrecError("config_invalid", "serve --role api needs cluster.redisUrl and cluster.postgresUrl (MEETREC_CLUSTER__REDIS_URL, MEETREC_CLUSTER__POSTGRES_URL)");
    if (!config.segments.s3) throw new MeetrecError("config_invalid", "cluster mode needs a segment bucket (segments.s3): workers share media through it");
    addAllowAllBackend(config, log);
    const store = await RecordingStore.openPostgres(c.postgresUrl);
    const dispatcher = new QueueDispatcher(c.redisUrl, c.queue, log, store);
    const files = new RecordingFiles(config, log);
    const metrics = new Metrics({ worker: hostname(), statusCounts: () => store.countByStatus(), active: () => 0, queued: () => 0, pendingSegments: () => 0, capacity: () => undefined });
    const base = baseUrl(config);
    const targets = deliveryTargets(config);
    const recordings: Recordings = new Recordings({ config, store, dispatcher, targets, delivery: { redeliver: (rec) => delivery.redeliver(rec) }, files, log, storeStops: true });
    const delivery = new DeliveryService({
      config, store, log, targets, describe: (rec) => toView(rec, base), withBase: (v) => withBase(v as never, base), filePath: (rec) => files.localCopy(rec), trackPaths: (rec) => files.localTracks(rec),
      fileUrl: (rec) => recordings.fileUrl(rec), onAttempt: (kind, ok) => metrics.deliveryAttempts.inc({ kind, outcome: ok ? "ok" : "retry" }),
    });
    new DeliveryPlanner({ store, log, targets, describe: (rec) => toView(rec, ""), queued: () => delivery.kick() });
    const talk = new TalkService({ config, store, dispatcher, stop: (id) => recordings.stop(id), log });
    const leadership = new Leadership({
      bus: dispatcher.bus, queue: dispatcher.queue, store, log, holder: `${hostname()}-${process.pid}`, reconcileIntervalMs: c.reconcileIntervalMs,
      lead: () => delivery.start(), follow: () => delivery.pause(), requeued: (r) => metrics.requeued.inc({ job_state: r.jobState }),
    });
    await leadership.start();
    return new ClusterApiHost(config, store, dispatcher, files, delivery, recordings, talk, metrics, leadership);
  }

  /** Whether some worker of the cluster could start a video recording now (for /readyz). */
  readiness(): Promise<Readiness> {
    return this.dispatcher.readiness();
  }

  /** Stops competing for the lead, closes the queue, the deliveries and the store. */
  async close(): Promise<void> {
    this.leadership.stop();
    await this.dispatcher.close();
    await this.delivery.close();
    await this.store.close();
  }
}
