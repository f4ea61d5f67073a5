/**
 * The cluster worker host (`meetrec worker`): PostgreSQL store, Redis, a recorder node fed by
 * the queue ({@link ClusterIntake}), and the deliveries its status changes call for queued in
 * the store (the leading API process sends them). Composition only.
 */
import { hostname } from "node:os";
import type { Config } from "../config/index.js";
import { DeliveryPlanner } from "../delivery/index.js";
import { ClusterBus, redisConnection, type CapacitySnapshot } from "../dispatch/index.js";
import type { Metrics } from "../metrics/index.js";
import { ClusterIntake, RecorderNode, Recovery } from "../recorder/index.js";
import { toView } from "../recordings/index.js";
import { RecordingStore } from "../store/index.js";
import { MeetrecError, errorMessage } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import type { Redis } from "ioredis";
import { planning } from "./planning.js";
import { deliveryTargets } from "./targets.js";

/** See module doc. {@link ClusterWorkerHost.start}, then {@link ClusterWorkerHost.shutdown}. */
export class ClusterWorkerHost {
  private constructor(
    readonly name: string, readonly store: RecordingStore, readonly node: RecorderNode, private readonly intake: ClusterIntake,
    private readonly bus: ClusterBus, private readonly redis: Redis,
  ) {}

  /**
   * Connects to PostgreSQL and Redis, kills what a killed previous run left, and starts taking jobs.
   * @throws MeetrecError `config_invalid` when cluster settings or the segment bucket are missing; `store_failed`.
   */
  static async start(config: Config, log: Logger): Promise<ClusterWorkerHost> {
    const c = config.cluster;
    if (!c.redisUrl || !c.postgresUrl) throw new MeetrecError("config_invalid", "meetrec worker needs cluster.redisUrl and cluster.postgresUrl (MEETREC_CLUSTER__REDIS_URL, MEETREC_CLUSTER__POSTGRES_URL)");
    if (!config.segments.s3) throw new MeetrecError("config_invalid", "meetrec worker needs a segment bucket (segments.s3): another worker continues a recording from it");
    const name = c.workerName ?? `${hostname()}-${process.pid}`;
    const wlog = log.child({ worker: name });
    const store = await RecordingStore.openPostgres(c.postgresUrl);
    const targets = deliveryTargets(config);
    const node = new RecorderNode({ config, store, log: wlog, name, failoverReason: "failover", planning: planning(config, targets, true, wlog) });
    node.killLeftovers();
    node.startPool();
    const redis = redisConnection(c.redisUrl);
    redis.on("error", (err) => wlog.warn({ err: errorMessage(err) }, "redis connection error"));
    const bus = new ClusterBus(c.queue, redis, c.redisUrl);
    new DeliveryPlanner({ store, log: wlog, targets, describe: (rec) => toView(rec, "") });
    const recovery = new Recovery({ config, store, log: wlog, plan: (rec) => node.plan(rec) });
    const intake = new ClusterIntake({ config, store, log: wlog, node, recovery, bus, name });
    await intake.start();
    return new ClusterWorkerHost(name, store, node, intake, bus, redis);
  }

  /** This worker's capacity as `/readyz` and the cluster see it. */
  snapshot(): CapacitySnapshot {
    return this.intake.snapshot();
  }

  /** Recordings running on this worker. */
  get active(): number {
    return this.node.active;
  }

  get metrics(): Metrics {
    return this.node.metrics;
  }

  /** SIGTERM: hands live recordings over (or finishes them), then disconnects. */
  async shutdown(): Promise<void> {
    await this.intake.drain();
    await this.bus.close();
    await this.redis.quit().catch(() => undefined);
    await this.node.close();
    await this.store.close();
  }
}
