/**
 * What the application needs from dispatch, in both modes: the in-process pool (embedded) and
 * the BullMQ queue (cluster, `serve --role api`).
 */
import type { CapacitySnapshot, Workload } from "./capacity.js";

/** Where a stop request landed. */
export type StopOutcome = "dequeued" | "stopping" | "unknown";

/** `/readyz`: can a recording start now, and what is running and waiting. */
export interface Readiness {
  /** A video recording would start now (on this machine, or on some worker of the cluster). */
  ready: boolean;
  active: number;
  queued: number;
  /** This machine's capacity (embedded mode). */
  capacity?: CapacitySnapshot;
  /** Each live worker's capacity and running recordings (cluster mode). */
  workers?: { name: string; active: number; capacity: CapacitySnapshot }[];
  /** Why nothing can be said of the cluster (`redis_unreachable`); absent when all is well. */
  problem?: string;
}

export interface Dispatcher {
  /**
   * Queues recording `id`; it starts wherever and whenever there is room for what it costs
   * (`work`: its stored options — kind, frame size, frame rate; see `recordingCost`).
   */
  submit(id: string, work: Workload): void | Promise<void>;
  /**
   * Stops `id`: `dequeued` when it had not started (the caller ends it), `stopping` when the
   * holder was told, `unknown` when nothing of it is known here.
   */
  stop(id: string, reason: "stopped" | "deleted"): StopOutcome | Promise<StopOutcome>;
  /** Resolves once `id` is no longer running (at once when it is not). */
  settled(id: string): Promise<void>;
  readiness(): Promise<Readiness>;
  /** Stops taking work; returns ids that were queued here and never started. */
  close(): Promise<string[]>;
}
