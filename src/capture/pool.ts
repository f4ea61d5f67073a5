/**
 * Warm capture stacks: display, sink, egress proxy and browser started before any recording
 * asks (`capture.warmBrowsers`), so that a new recording — or a recording taken over after a
 * failover — only opens its page and joins. A stack is handed to one recording and never comes
 * back: every recording gets a fresh profile, a fresh display and a fresh sink. The pool refills
 * in the background — {@link REFILL_DELAY_MS} after a stack was taken, so that the new browser
 * does not compete with the starting recording — up to the size its owner allows at that
 * moment (the recorder node sizes it by the capacity left).
 */
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { MeetrecError, errorMessage } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { CaptureSession, NO_EGRESS, sameStack, type SessionHooks, type SessionOptions } from "./session.js";

/** How long after a stack failed to start the pool tries again, ms. */
const RETRY_MS = 10_000;
/**
 * How long after a stack was taken the pool starts its replacement, ms. Launching a browser
 * takes a core or two for a second or more; right away it would compete with the recording that
 * took the stack while that one joins and starts its encoder (measured: the first segment of a
 * meeting on a warm stack came 3.6 s after the capture began, against 1.2 s without one).
 */
export const REFILL_DELAY_MS = 10_000;

/**
 * Hooks of a session no recording has yet: its timeline events are logged; its capture hooks
 * are never called (it captures nothing until bound).
 */
export function idleHooks(log: Logger): SessionHooks {
  return {
    beginPeriod: () => Promise.reject(new MeetrecError("internal", "an unbound session began capturing")),
    init: () => Promise.resolve(), segment: () => Promise.resolve(), mediaFlowing: () => undefined,
    event: (e) => log.info({ event: e.type }, e.message),
    failed: (err) => log.warn({ code: err.code, err: err.message }, "a waiting browser failed"),
  };
}

/** What a pool is made of. */
export interface WarmPoolOptions {
  /** How many warm stacks to keep now (read at every refill). */
  target(): number;
  /**
   * The options a stack is warmed with, for its id (`warm-{uuid}`: its marker, sink and profile
   * names); the pool adds its log and no egress (every connection refused until it is bound).
   */
  stage(id: string): Promise<Omit<SessionOptions, "egress" | "log">>;
  log: Logger;
}

/** See module doc. {@link WarmPool.fill} starts it; {@link WarmPool.close} ends it. */
export class WarmPool {
  private readonly ready: CaptureSession[] = [];
  private starting = 0;
  /** Stacks being started (awaited by {@link close}). */
  private readonly pending = new Set<Promise<void>>();
  private closed = false;
  /** A scheduled {@link fill}: after a failed start, or at the end of the quiet time after a take. */
  private timer?: NodeJS.Timeout;
  /** No stack is started before this wall clock, ms ({@link REFILL_DELAY_MS} after a take). */
  private quietUntil = 0;

  constructor(private readonly o: WarmPoolOptions) {}

  /** Warm stacks ready to be taken now (a stack whose browser died is not counted). */
  get size(): number {
    return this.ready.filter((s) => s.ready).length;
  }

  /** Starts stacks in the background until ready + starting reaches the target (not within {@link REFILL_DELAY_MS} of a take: then it is scheduled). Never throws. */
  fill(): void {
    if (this.closed || this.timer) return;
    this.dropDead();
    const wait = this.quietUntil - Date.now();
    if (wait > 0) return this.fillIn(wait);
    const missing = this.o.target() - this.ready.length - this.starting;
    for (let i = 0; i < missing; i++) {
      const p = this.startOne().finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
  }

  private dropDead(): void {
    for (let i = this.ready.length - 1; i >= 0; i--) {
      const s = this.ready[i];
      if (s.ready) continue;
      this.ready.splice(i, 1);
      this.o.log.warn("a warm browser died while waiting; replacing it");
      void this.discard(s);
    }
  }

  /** Schedules {@link fill} in `ms` (one at a time). */
  private fillIn(ms: number): void {
    this.timer ??= setTimeout(() => { this.timer = undefined; this.fill(); }, ms);
    this.timer.unref();
  }

  /** Closes a stack that no recording will take, and removes its scratch directory. */
  private async discard(s: CaptureSession): Promise<void> {
    await s.close();
    rmSync(s.options.workDir, { recursive: true, force: true });
  }

  private async startOne(): Promise<void> {
    this.starting++;
    const id = `warm-${randomUUID()}`;
    const log = this.o.log.child({ warm: id });
    try {
      const s = new CaptureSession({ ...await this.o.stage(id), egress: NO_EGRESS, log }, idleHooks(log));
      const t = performance.now();
      await s.prewarm();
      if (this.closed) return await this.discard(s);
      this.ready.push(s);
      log.info({ ms: Math.round(performance.now() - t) }, "warm capture stack ready");
    } catch (err) {
      log.warn({ code: (err as MeetrecError).code, err: errorMessage(err) }, `a warm capture stack could not be started; next try in ${RETRY_MS / 1000} s`);
      this.fillIn(RETRY_MS);
    } finally {
      this.starting--;
    }
  }

  /**
   * A warm stack that can record `o` ({@link sameStack}), bound to it (`o`, `hooks`), or
   * undefined when none is ready; the pool refills in the background. The stack's own scratch
   * directory goes: its process registry is written into `o.workDir` from now on.
   */
  take(o: SessionOptions, hooks: SessionHooks): CaptureSession | undefined {
    if (this.closed) return undefined;
    this.dropDead();
    const i = this.ready.findIndex((s) => s.ready && sameStack(s.options, o));
    if (i < 0) return undefined;
    const [s] = this.ready.splice(i, 1);
    const warmDir = s.options.workDir;
    s.bind(o, hooks);
    rmSync(warmDir, { recursive: true, force: true });
    this.o.log.info({ recordingId: o.recordingId }, "warm capture stack taken");
    this.quietUntil = Date.now() + REFILL_DELAY_MS;
    this.fill();
    return s;
  }

  /** Closes every waiting stack, and every stack still starting once it is up. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await Promise.all([...this.pending]);
    await Promise.all(this.ready.splice(0).map((s) => this.discard(s)));
  }
}
