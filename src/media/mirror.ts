/**
 * Mirrors a recording's local store to its segment bucket: each init and media segment is
 * uploaded in order as soon as it is durable locally; once the bucket acknowledges it, the
 * manifest records it as remote and the local copy is removed (unless `keepLocal`), then the
 * bucket's manifest is rewritten. While the bucket is unreachable, files wait on local disk (the disk guard counts
 * them) and are retried with capped backoff, in order; nothing is ever dropped.
 */
import { join } from "node:path";
import type { EventOf } from "../store/index.js";
import { errorMessage } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { sleep } from "../util/process.js";
import type { RecordingBucket } from "./bucket.js";
import { pendingUploads, remoteView } from "./manifest.js";
import type { RecordingMedia } from "./segment-store.js";

/** The timeline events a mirror reports (their shapes: store/timeline.ts). */
export type MirrorEvent = EventOf<"segment_upload_failing" | "segment_upload_recovered">;

/** Callbacks for the timeline and metrics. */
export interface MirrorHooks {
  /** The bucket failed (first failure) or is reachable again after failing. Must not throw. */
  event?(e: MirrorEvent): void;
  /** One file uploaded in `seconds`. */
  uploaded?(seconds: number): void;
  /**
   * Cluster fencing: asked before each upload; false (another worker holds the recording now)
   * stops this mirror for good, so a fenced worker never writes into the bucket again.
   */
  mayWrite?(): Promise<boolean>;
}

/** See module doc. {@link SegmentMirror.kick} after each stored file; {@link SegmentMirror.flush} before finalizing. */
export class SegmentMirror {
  private running?: Promise<void>;
  private closed = false;
  private manifestDirty = false;
  private failingSince?: number;
  private wake?: () => void;

  /** `opts.keepLocal`: an uploaded file's local copy stays (the recording keeps its segments, RecordingPlan.keepSegments). */
  constructor(private readonly media: RecordingMedia, readonly bucket: RecordingBucket, private readonly log: Logger, private readonly hooks: MirrorHooks = {}, private readonly opts: { keepLocal?: boolean } = {}) {}

  /** Files waiting for the bucket. */
  get backlog(): number {
    return pendingUploads(this.media.current).length;
  }

  /** Starts uploading what is pending (no-op while a drain runs; it picks new files up). */
  kick(): void {
    this.manifestDirty = true;
    this.wake?.();
    this.running ??= this.drain().finally(() => { this.running = undefined; });
  }

  private async drain(): Promise<void> {
    let backoff = 500;
    while (!this.closed) {
      const next = pendingUploads(this.media.current)[0];
      if (!next && !this.manifestDirty) return;
      try {
        if (this.hooks.mayWrite && !(await this.hooks.mayWrite())) {
          this.log.warn({ backlog: this.backlog }, "no longer the recording's holder: the bucket is left to the new one");
          this.closed = true;
          return;
        }
        if (next) {
          const t = performance.now();
          await this.bucket.putFile(next.file, join(this.media.dir, next.file), next.item === "init" ? "video/mp4" : "video/iso.segment");
          await this.media.markRemote(next.period, next.item, { keepLocal: this.opts.keepLocal });
          this.hooks.uploaded?.((performance.now() - t) / 1000);
        }
        this.manifestDirty = false;
        await this.bucket.putManifest(remoteView(this.media.current));
        if (this.failingSince !== undefined) {
          const downMs = Date.now() - this.failingSince;
          this.failingSince = undefined;
          this.log.info({ downMs, backlog: this.backlog }, "segment bucket reachable again");
          this.hooks.event?.({
            type: "segment_upload_recovered",
            message: `The segment bucket is reachable again after ${(downMs / 1000).toFixed(1)} s; uploading the queued segments`,
            data: { downMs, backlog: this.backlog },
          });
        }
        backoff = 500;
      } catch (err) {
        this.manifestDirty = true;
        if (this.failingSince === undefined) {
          this.failingSince = Date.now();
          this.log.warn({ err: errorMessage(err), file: next?.file }, "segment upload failed; segments queue on local disk and are retried");
          this.hooks.event?.({
            type: "segment_upload_failing",
            message: `Uploading segments to bucket ${this.bucket.cfg.bucket} fails (${errorMessage(err)}); they wait on local disk and are retried`,
            data: { file: next?.file },
          });
        }
        await new Promise<void>((r) => { this.wake = r; void sleep(backoff).then(r); });
        this.wake = undefined;
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  /**
   * Waits until everything is uploaded, or `timeoutMs` passed. Returns true when the bucket
   * has every file.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    this.kick();
    while (this.running && Date.now() < end) {
      await Promise.race([this.running, sleep(200)]);
    }
    return this.backlog === 0 && !this.manifestDirty;
  }

  /** Stops uploading (what is pending stays on local disk, listed in the manifest). */
  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.running;
  }
}
