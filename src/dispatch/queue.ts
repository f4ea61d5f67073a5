/**
 * Cluster dispatch on Redis: recordings are BullMQ jobs (job id = recording id) on one queue;
 * workers take them (see src/worker/cluster-worker.ts). Stop requests go out on a Redis
 * channel to every worker (the holder acts) and are also stored in the database, so a stop
 * that arrives while a recording moves between workers is not lost. Workers announce
 * themselves and their capacity under `{queue}:worker:{name}` with a short expiry.
 */
import { Queue, type Job } from "bullmq";
import { Redis } from "ioredis";
import type { Logger } from "../util/log.js";
import { TERMINAL, type RecordingStatus } from "../store/index.js";
import { errorMessage } from "../util/errors.js";
import type { CapacitySnapshot, RecordingKind, Workload } from "./capacity.js";
import type { Dispatcher, Readiness, StopOutcome } from "./types.js";

/**
 * How long a request of the API waits for Redis, ms. ioredis keeps commands while it
 * reconnects, so without a bound a request would hang for as long as Redis is down.
 */
export const REDIS_REQUEST_TIMEOUT_MS = 3000;

/** `p`'s value, or `undefined` when it takes longer than `ms` (`p` goes on; its error is dropped). */
async function within<T>(p: Promise<T>, ms: number): Promise<{ value: T } | undefined> {
  p.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), ms); });
  try {
    return await Promise.race([p.then((value) => ({ value })), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A job's data. */
export interface RecordJobData {
  id: string;
  kind: RecordingKind;
}

/**
 * Adds recording `id`'s job (job id = recording id, so adding it twice adds it once). The one
 * place the job's options are set: one attempt (a failed run is looked at by the reconciler,
 * not retried blindly), removed on completion, the last 1000 failures kept for inspection.
 */
export function addRecordJob(queue: Queue<RecordJobData>, id: string, kind: RecordingKind): Promise<unknown> {
  return queue.add("record", { id, kind }, { jobId: id, removeOnComplete: true, removeOnFail: 1000, attempts: 1 });
}

/** Job states on which no worker will act: the recording needs a new job (`missing`: no job at all). */
const DEAD_JOB_STATES = new Set(["missing", "completed", "failed", "unknown"]);

/** Recording `id`'s job (if any), its state (`missing` when there is none), and whether a worker will still act on it. */
export async function recordJobState(queue: Queue<RecordJobData>, id: string): Promise<{ job?: Job<RecordJobData>; state: string; live: boolean }> {
  const job = await queue.getJob(id);
  const state = job ? await job.getState() : "missing";
  return { job, state, live: !DEAD_JOB_STATES.has(state) };
}

/** What a worker announces (JSON under `{queue}:worker:{name}`). */
interface WorkerAnnouncement {
  name: string;
  active: number;
  capacity: CapacitySnapshot;
}

/** A Redis connection as BullMQ wants it (no retry limit per request: commands wait for a reconnect). */
export function redisConnection(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: (n) => Math.min(n * 200, 2000) });
}

/** Stop channel, worker registry and leader lock on Redis. */
export class ClusterBus {
  private sub?: Redis;
  constructor(readonly queue: string, private readonly redis: Redis, private readonly url: string) {}

  get stopChannel(): string {
    return `${this.queue}:stop`;
  }

  /** Tells every worker to stop `id` with `reason`. */
  async publishStop(id: string, reason: string): Promise<void> {
    await this.redis.publish(this.stopChannel, JSON.stringify({ id, reason }));
  }

  /** Calls `fn` for each stop published (re-subscribes by itself after a Redis restart). */
  async onStop(fn: (id: string, reason: string) => void): Promise<void> {
    this.sub = redisConnection(this.url);
    this.sub.on("message", (_ch: string, msg: string) => {
      try {
        const { id, reason } = JSON.parse(msg) as { id: string; reason: string };
        fn(id, reason);
      } catch { /* not ours */ }
    });
    this.sub.on("error", () => undefined);
    await this.sub.subscribe(this.stopChannel);
  }

  /** Announces a worker for `ttlMs`. */
  async announce(a: WorkerAnnouncement, ttlMs: number): Promise<void> {
    await this.redis.set(`${this.queue}:worker:${a.name}`, JSON.stringify(a), "PX", ttlMs);
  }

  async withdraw(name: string): Promise<void> {
    await this.redis.del(`${this.queue}:worker:${name}`);
  }

  /** The workers that announced themselves recently. */
  async workers(): Promise<WorkerAnnouncement[]> {
    const keys = await this.redis.keys(`${this.queue}:worker:*`);
    if (keys.length === 0) return [];
    return (await this.redis.mget(keys)).filter((v): v is string => !!v).map((v) => JSON.parse(v) as WorkerAnnouncement);
  }

  /**
   * Takes or renews the lock `name` for `holder` for `ttlMs`; true while this holder has it
   * (SET NX PX, then compare-and-extend).
   */
  async lead(name: string, holder: string, ttlMs: number): Promise<boolean> {
    const key = `${this.queue}:leader:${name}`;
    if (await this.redis.set(key, holder, "PX", ttlMs, "NX")) return true;
    const r = await this.redis.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end", 1, key, holder, String(ttlMs));
    return r === 1;
  }

  async close(): Promise<void> {
    await this.sub?.quit().catch(() => undefined);
  }
}

/** Cluster dispatcher of the API role. */
export class QueueDispatcher implements Dispatcher {
  readonly queue: Queue<RecordJobData>;
  private readonly redis: Redis;
  readonly bus: ClusterBus;

  /**
   * @param store where {@link QueueDispatcher.settled} reads whether a recording is still live.
   */
  constructor(url: string, queueName: string, private readonly log: Logger, private readonly store: { get(id: string): Promise<{ status: RecordingStatus } | undefined> }) {
    this.redis = redisConnection(url);
    this.redis.on("error", (err) => log.warn({ err: errorMessage(err) }, "redis connection error"));
    this.queue = new Queue<RecordJobData>(queueName, { connection: this.redis });
    this.queue.on("error", () => undefined);
    this.bus = new ClusterBus(queueName, this.redis, url);
  }

  /**
   * Adds the recording's job. When Redis does not answer within {@link REDIS_REQUEST_TIMEOUT_MS}
   * it returns anyway: the recording is already in the store, ioredis sends the job when it
   * reconnects, and the job reconciler adds it if that was lost too. The job carries the id and
   * kind only: the worker that takes it admits it by the cost of the recording's stored options.
   * @throws the queue's error when Redis refuses the job outright.
   */
  async submit(id: string, work: Workload): Promise<void> {
    const kind = typeof work === "string" ? work : work.mode;
    const added = await within(addRecordJob(this.queue, id, kind), REDIS_REQUEST_TIMEOUT_MS);
    if (!added) this.log.warn({ recordingId: id }, "Redis did not answer; the recording is stored and is queued once Redis is back");
  }

  /**
   * See {@link Dispatcher.stop}. When Redis does not answer in time, `unknown`: the stop is in
   * the store already, where the holder (or the worker that takes the job later) reads it.
   */
  async stop(id: string, reason: "stopped" | "deleted"): Promise<StopOutcome> {
    const found = await within(this.queue.getJob(id), REDIS_REQUEST_TIMEOUT_MS);
    if (!found) {
      this.log.warn({ recordingId: id }, "Redis did not answer; the stop is stored and reaches the worker from the store");
      void this.bus.publishStop(id, reason).catch(() => undefined); // sent when Redis is back
      return "unknown";
    }
    const job = found.value;
    if (job && ["waiting", "delayed", "prioritized", "waiting-children"].includes(await job.getState())) {
      try {
        await job.remove();
        return "dequeued";
      } catch { /* a worker took it just now: tell it */ }
    }
    await this.bus.publishStop(id, reason);
    return job ? "stopping" : "unknown";
  }

  /** Resolves once the store has `id` ended or delivering (or gone), polling every 200 ms for at most 2 min. */
  async settled(id: string): Promise<void> {
    for (let i = 0; i < 600; i++) {
      const r = await this.store.get(id);
      if (!r || TERMINAL.includes(r.status) || r.status === "delivering") return;
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  /** See {@link Dispatcher.readiness}; not ready, with `problem`, when Redis does not answer in time. */
  async readiness(): Promise<Readiness> {
    const read = await within(Promise.all([this.bus.workers(), this.queue.getJobCounts("waiting", "delayed", "prioritized")]), REDIS_REQUEST_TIMEOUT_MS);
    if (!read) return { ready: false, active: 0, queued: 0, workers: [], problem: "redis_unreachable" };
    const [workers, counts] = read.value;
    return {
      ready: workers.some((w) => w.capacity.canAccept.video),
      active: workers.reduce((n, w) => n + w.active, 0),
      queued: (counts.waiting ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0),
      workers: workers.map((w) => ({ name: w.name, active: w.active, capacity: w.capacity })),
    };
  }

  async close(): Promise<string[]> {
    await this.bus.close();
    await this.queue.close();
    await this.redis.quit().catch(() => undefined);
    return [];
  }
}
