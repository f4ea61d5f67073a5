/**
 * A whole cluster on loopback for tests and the failover benchmark: Redis, PostgreSQL, s3rver
 * (bucket `media`), one `serve --role api` and named `meetrec worker` processes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from "./services.js";
import { descendants, freePort, startServer, type TestServer } from "./server.js";

export interface Cluster {
  redis: RedisServer;
  pg: PostgresServer;
  api: TestServer;
  workers: TestServer[];
  /** The YAML config every process uses (cluster + segments.s3). */
  config: Record<string, any>;
  /** Starts a worker; `dataDir`: its data directory (default: a new one), e.g. a killed worker's to restart it. */
  startWorker(name: string, opts?: { dataDir?: string }): Promise<TestServer>;
  /** The live worker running the recording's browser (from its last `recording` / `resumed` event). */
  holderOf(rec: any): TestServer;
  /** Kills a worker and everything it runs (SIGKILL), as if its machine were gone. */
  killMachine(w: TestServer): Promise<void>;
  stop(): Promise<void>;
}

/** `extra` is merged into the shared config (e.g. backends with webhooks). */
export async function startCluster(workerNames: string[], extra: Record<string, unknown> = {}): Promise<Cluster> {
  const [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  const port = await freePort();
  const s3dir = mkdtempSync(join(tmpdir(), "meetrec-cluster-s3-"));
  const s3 = new S3rver({ port, address: "127.0.0.1", silent: true, directory: join(s3dir, "s3"), configureBuckets: [{ name: "media" }] });
  await s3.run();
  const config = {
    cluster: { redisUrl: redis.url, postgresUrl: pg.url, lockDurationMs: 4000, stalledIntervalMs: 2000, leaseCheckMs: 1000, reconcileIntervalMs: 2000 },
    segments: { s3: { bucket: "media", endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } },
    delivery: { pollIntervalMs: 100 },
    ...extra,
  };
  const api = await startServer({ args: ["serve", "--role", "api"], config });
  const workers: TestServer[] = [];
  const startWorker = async (name: string, opts: { dataDir?: string } = {}) => {
    const w = await startServer({ args: ["worker"], config, env: { MEETREC_CLUSTER__WORKER_NAME: name }, dataDir: opts.dataDir });
    workers.push(w);
    return w;
  };
  for (const n of workerNames) await startWorker(n);
  const alive = (w: TestServer) => w.child.exitCode === null && w.child.signalCode === null;
  return {
    redis, pg, api, workers, config, startWorker,
    holderOf(rec) {
      const pids = Object.values(rec.events.findLast((e: any) => e.status === "recording" || e.type === "resumed").data.pids) as number[];
      const w = workers.find((x) => alive(x) && descendants(x.child.pid!).some((d) => pids.includes(d.pid)));
      if (!w) throw new Error(`no worker runs ${pids}`);
      return w;
    },
    async killMachine(w) {
      const all = [w.child.pid!, ...descendants(w.child.pid!).map((d) => d.pid)];
      for (const pid of all) { try { process.kill(pid, "SIGKILL"); } catch { /* gone */ } }
      await new Promise((r) => (alive(w) ? w.child.once("exit", r) : r(null)));
    },
    async stop() {
      for (const w of workers) await w.stop();
      await api.stop();
      await s3.close();
      rmSync(s3dir, { recursive: true, force: true });
      await redis.stop();
      await pg.stop();
    },
  };
}
