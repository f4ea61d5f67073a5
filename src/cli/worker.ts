/**
 * `meetrec worker`: a recording machine of a cluster (see src/hosts/cluster-worker.ts), with
 * `/healthz`, `/readyz` and `/metrics` on `listen`.
 */
import { existsSync, rmSync } from "node:fs";
import { configWarnings, loadConfig } from "../config/index.js";
import { buildWorkerServer, listenOptions } from "../api/index.js";
import { ClusterWorkerHost } from "../hosts/index.js";
import { DataDirLock } from "../util/data-dir-lock.js";
import { createLogger } from "../util/log.js";

/** Starts the worker; SIGTERM/SIGINT hand its recordings over (or finish them) and exit. */
export async function runWorker(opts: { config?: string }): Promise<void> {
  const config = loadConfig(opts.config);
  const log = createLogger(process.env.MEETREC_LOG_LEVEL ?? config.logLevel);
  for (const warning of configWarnings(config)) log.warn(warning);
  const lock = DataDirLock.acquire(config.dataDir, "worker");
  const worker = await ClusterWorkerHost.start(config, log);
  const server = buildWorkerServer(worker, log);
  const where = listenOptions(config.listen);
  if ("path" in where && existsSync(where.path)) rmSync(where.path);
  await server.listen(where);
  log.info({ worker: worker.name, listen: config.listen, dataDir: config.dataDir }, "meetrec worker is running");
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, "worker shutting down");
    await worker.shutdown();
    await server.close();
    lock.release();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
}
