/**
 * `meetrec serve`: the embedded server (API + store + dispatch + workers in one process).
 */
import { existsSync, rmSync } from "node:fs";
import { configWarnings, loadConfig, ensureDefaultBackend } from "../config/index.js";
import { buildServer, listenOptions } from "../api/index.js";
import { ClusterApiHost, EmbeddedHost } from "../hosts/index.js";
import { createLogger } from "../util/log.js";

/** Starts the server and resolves once it listens; SIGINT/SIGTERM stop it gracefully (live recordings are finalized). */
export async function serve(opts: { config?: string; role?: "embedded" | "api" }): Promise<void> {
  let notCarried: string[] = [];
  let imported: string[] | undefined;
  const config = loadConfig(opts.config, process.env, (keys, warnings) => { notCarried = keys; imported = warnings; });
  const log = createLogger(process.env.MEETREC_LOG_LEVEL ?? config.logLevel);
  for (const key of notCarried) log.warn({ key }, "server.conf key not carried over");
  // A server.conf's warnings name its own keys; a YAML's name meetrec's.
  for (const warning of imported ?? configWarnings(config)) log.warn(warning);
  const keyFile = ensureDefaultBackend(config);
  if (keyFile) log.info({ keyFile }, "no backend configured: created backend \"default\"; its API key is in this file");
  for (const [name, b] of Object.entries(config.backends)) {
    if (b.apiKey && b.allowedOrigins.length === 0) log.warn({ backend: name }, "backend has no allowedOrigins: its key holder can make the recorder open any public web page (the egress policy keeps it off loopback, link-local and private addresses)");
  }
  const app = opts.role === "api" ? await ClusterApiHost.start(config, log) : await EmbeddedHost.start(config, log);
  const server = await buildServer(app, log);
  const where = listenOptions(config.listen);
  if ("path" in where && existsSync(where.path)) rmSync(where.path);
  await server.listen(where);
  log.info({ role: opts.role ?? "embedded", listen: config.listen, dataDir: config.dataDir, concurrency: config.concurrency }, "meetrec is listening");
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, "shutting down: stopping and finalizing live recordings");
    await server.close();
    await app.close();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
}
