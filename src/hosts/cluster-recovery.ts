/**
 * The cluster's recovery host (`meetrec recover` with cluster settings): the cluster's store,
 * queue and bucket, wired to {@link Recovery.cluster}. Composition only.
 */
import { Queue } from "bullmq";
import type { Config } from "../config/index.js";
import { ClusterBus, addRecordJob, recordJobState, redisConnection, type RecordJobData } from "../dispatch/index.js";
import { Recovery, planRecording, type RecoveryAction } from "../recorder/index.js";
import { RecordingStore } from "../store/index.js";
import type { Logger } from "../util/log.js";
import { planning } from "./planning.js";
import { deliveryTargets } from "./targets.js";

/**
 * Recovers the cluster's recordings no worker carries (see {@link Recovery.cluster}); `resume`
 * queues live ones again instead of finalizing them. (While an API process runs, its job
 * reconciler re-queues job-less recordings by itself; this is for when no worker will come.)
 * @throws MeetrecError `store_failed` when PostgreSQL cannot be reached; Redis and bucket errors as they come.
 */
export async function recoverCluster(config: Config, log: Logger, o: { resume: boolean }): Promise<RecoveryAction[]> {
  const store = await RecordingStore.openPostgres(config.cluster.postgresUrl!);
  const connection = redisConnection(config.cluster.redisUrl!);
  const queue = new Queue<RecordJobData>(config.cluster.queue, { connection });
  const plan = planning(config, deliveryTargets(config), true, log);
  try {
    const recovery = new Recovery({ config, store, log, plan: (rec) => planRecording({ ...plan, capture: config.capture }, rec) });
    return await recovery.cluster({
      resume: o.resume,
      workersAlive: (await new ClusterBus(config.cluster.queue, connection, config.cluster.redisUrl!).workers()).length > 0,
      job: async (id) => {
        const { job, live } = await recordJobState(queue, id);
        return { live, remove: async () => { await job?.remove().catch(() => undefined); } };
      },
      requeue: async (rec) => { await addRecordJob(queue, rec.id, rec.options.mode); },
    });
  } finally {
    await queue.close();
    await connection.quit().catch(() => undefined);
    await store.close();
  }
}
