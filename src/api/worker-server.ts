/**
 * The small HTTP server of `meetrec worker`: `/healthz`, `/readyz` (200 when one more video
 * recording fits on this worker, else 503, with its capacity) and `/metrics` (Prometheus).
 */
import Fastify, { type FastifyInstance } from "fastify";
import { httpLogger, type Logger } from "../util/log.js";
import type { CapacitySnapshot } from "../dispatch/index.js";
import type { Metrics } from "../metrics/index.js";

/** What the worker's server shows. */
export interface WorkerStatus {
  name: string;
  /** Recordings running on the worker. */
  readonly active: number;
  snapshot(): CapacitySnapshot;
  metrics: Metrics;
}

/** Builds the worker's server (not listening). */
export function buildWorkerServer(worker: WorkerStatus, log: Logger): FastifyInstance {
  const server = Fastify({ loggerInstance: httpLogger(log), disableRequestLogging: true });
  server.get("/healthz", async () => ({ status: "ok", worker: worker.name }));
  server.get("/readyz", async (_req, reply) => {
    const capacity = worker.snapshot();
    const body = { ready: capacity.canAccept.video, worker: worker.name, active: worker.active, capacity };
    return reply.code(body.ready ? 200 : 503).send(body);
  });
  server.get("/metrics", async (_req, reply) => {
    const m = await worker.metrics.render();
    return reply.type(m.contentType).send(m.body);
  });
  return server as unknown as FastifyInstance;
}
