/**
 * `meetrec recover`: takes up the recordings a killed or crashed meetrec left in a data
 * directory, without serving the API. By default it finalizes them from what was captured
 * (`--resume` rejoins the live ones instead and runs until they end), finalizes media
 * directories the store does not know, and prints what it did. With cluster settings it works
 * on the cluster's store, queue and bucket instead (see `recoverCluster`).
 */
import { Queue } from "bullmq";
import { loadConfig, type Config } from "../config/index.js";
import { ClusterBus, addRecordJob, recordJobState, redisConnection, type RecordJobData } from "../dispatch/index.js";
import { EmbeddedHost } from "../hosts/index.js";
import { planning } from "../hosts/planning.js";
import { deliveryTargets } from "../hosts/targets.js";
import { Recovery, planRecording, type RecoveryAction } from "../recorder/index.js";
import { RecordingStore, TERMINAL } from "../store/index.js";
import { createLogger, type Logger } from "../util/log.js";
import { sleep } from "../util/process.js";

/** Options of `meetrec recover`. */
export interface RecoverOptions {
  config?: string;
  resume?: boolean;
  json?: boolean;
}

/**
 * Cluster: {@link Recovery.cluster} on the cluster's store, queue and bucket. (While an API
 * process runs, its job reconciler re-queues job-less recordings by itself; `recover` is for
 * when no worker will come.)
 */
async function recoverCluster(config: Config, log: Logger, o: RecoverOptions): Promise<number> {
  const store = await RecordingStore.openPostgres(config.cluster.postgresUrl!);
  const connection = redisConnection(config.cluster.redisUrl!);
  const queue = new Queue<RecordJobData>(config.cluster.queue, { connection });
  const plan = planning(config, deliveryTargets(config), true, log);
  try {
    const recovery = new Recovery({ config, store, log, plan: (rec) => planRecording({ ...plan, capture: config.capture }, rec) });
    const actions = await recovery.cluster({
      resume: !!o.resume,
      workersAlive: (await new ClusterBus(config.cluster.queue, connection, config.cluster.redisUrl!).workers()).length > 0,
      job: async (id) => {
        const { job, live } = await recordJobState(queue, id);
        return { live, remove: async () => { await job?.remove().catch(() => undefined); } };
      },
      requeue: async (rec) => { await addRecordJob(queue, rec.id, rec.options.mode); },
    });
    return report(config, actions, o);
  } finally {
    await queue.close();
    await connection.quit().catch(() => undefined);
    await store.close();
  }
}

function report(config: Config, after: RecoveryAction[], o: RecoverOptions): number {
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ dataDir: config.dataDir, recovered: after }, null, 1)}\n`);
  } else if (after.length === 0) {
    process.stdout.write("nothing to recover\n");
  } else {
    process.stdout.write(`${after.map(line).join("\n")}\n`);
    if (after.some((a) => a.status === "delivering")) process.stdout.write("deliveries continue when meetrec serve runs\n");
  }
  const bad = after.some((a) => a.action === "orphan_failed" || (a.status && TERMINAL.includes(a.status) && a.status !== "completed" && a.action !== "queued"));
  return bad ? 1 : 0;
}

function line(a: RecoveryAction): string {
  switch (a.action) {
    case "orphan_finalized": return `${a.id}  media without a record → ${a.file}`;
    case "orphan_failed": return `${a.id}  media without a record could not be finalized: ${a.error}`;
    default: return `${a.id}  ${a.action} (now ${a.status})`;
  }
}

/**
 * Runs recovery; resolves with the process exit code (0 = everything recovered, 1 = something
 * could not be). @throws MeetrecError `conflict` when `meetrec serve` uses the data directory.
 */
export async function recover(o: RecoverOptions): Promise<number> {
  const config = loadConfig(o.config);
  const log = createLogger(process.env.MEETREC_LOG_LEVEL ?? "warn");
  if (config.cluster.postgresUrl && config.cluster.redisUrl) return recoverCluster(config, log, o);
  const app = await EmbeddedHost.start(config, log, { recovery: o.resume ? "resume" : "finalize", command: "recover" });
  try {
    const actions = app.recovered;
    if (o.resume) {
      // Resumed recordings run until their limit or `meetrec` is stopped (Ctrl-C stops them cleanly).
      let stop = false;
      const onSignal = () => { stop = true; };
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      for (;;) {
        const live = (await app.store.listUnfinished()).filter((r) => !["delivering", "queued"].includes(r.status));
        if (live.length === 0 || stop) break;
        process.stderr.write(`\r${live.length} recording(s) resumed and running (Ctrl-C stops and finalizes them)   `);
        await sleep(1000);
      }
    }
    const after: RecoveryAction[] = [];
    for (const a of actions) {
      const rec = a.action.startsWith("orphan") ? undefined : await app.store.get(a.id);
      after.push(rec ? { ...a, status: rec.status } : a);
    }
    return report(config, after, o);
  } finally {
    await app.close();
  }
}
