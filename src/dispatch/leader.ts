/**
 * The cluster API's leader duties: one API process at a time (a lock on Redis, renewed every
 * 3 s, lost after 10 s without renewal) sends the deliveries and runs the job reconciler.
 * Every API process competes; when the leader dies another takes over within ~10 s.
 */
import type { Queue } from "bullmq";
import type { Logger } from "../util/log.js";
import type { ClusterBus, RecordJobData } from "./queue.js";
import { JobReconciler, type ReconcilerStore, type Requeued } from "./reconciler.js";

/** How long the lock lasts without renewal, ms. */
const LEAD_TTL_MS = 10_000;
/** How often the lock is taken or renewed, ms. */
const LEAD_EVERY_MS = 3000;

/** What the leader does, and with what. */
export interface LeadershipDeps {
  bus: ClusterBus;
  queue: Queue<RecordJobData>;
  store: ReconcilerStore;
  log: Logger;
  /** This process's name in the lock (`host-pid`). */
  holder: string;
  /** Job reconciler sweep interval, ms (`cluster.reconcileIntervalMs`). */
  reconcileIntervalMs: number;
  /** This process became the leader (start sending deliveries). */
  lead(): void;
  /** Another process leads now (stop sending). */
  follow(): void;
  /** A recording was queued again by the reconciler (metrics). */
  requeued?(r: Requeued): void;
}

/** See module doc. {@link Leadership.start}, then {@link Leadership.stop}. */
export class Leadership {
  private leading = false;
  private sweeping = false;
  private leadTimer?: NodeJS.Timeout;
  private sweepTimer?: NodeJS.Timeout;
  private readonly reconciler: JobReconciler;

  constructor(private readonly d: LeadershipDeps) {
    this.reconciler = new JobReconciler(d.queue, d.store, d.log, (r) => d.requeued?.(r));
  }

  /** Competes for the lock now and then every {@link LEAD_EVERY_MS}; sweeps while leading. */
  async start(): Promise<void> {
    await this.compete();
    this.leadTimer = setInterval(() => void this.compete(), LEAD_EVERY_MS);
    this.leadTimer.unref();
    this.sweepTimer = setInterval(() => {
      if (!this.leading || this.sweeping) return;
      this.sweeping = true;
      void this.reconciler.sweep().finally(() => { this.sweeping = false; });
    }, this.d.reconcileIntervalMs);
    this.sweepTimer.unref();
  }

  private async compete(): Promise<void> {
    const now = await this.d.bus.lead("delivery", this.d.holder, LEAD_TTL_MS).catch(() => false);
    if (now && !this.leading) { this.d.log.info("this API process runs the deliveries and the job reconciler"); this.d.lead(); }
    if (!now && this.leading) { this.d.log.info("another API process runs the deliveries now"); this.d.follow(); }
    this.leading = now;
  }

  /** Stops competing (the lock expires by itself). */
  stop(): void {
    clearInterval(this.leadTimer);
    clearInterval(this.sweepTimer);
  }
}
