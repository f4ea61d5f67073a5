/**
 * One OpenVidu COMPOSED recording in the container, from openvidu-server's start to the files
 * it reads (shared/protocols/openvidu-recording.md §2–§4, §7):
 *
 * 1. `.recording.{id}` = `RECORDING_JSON` (kept when a container before this one wrote it);
 * 2. meetrec records the layout page — segments durable on the recordings folder as they
 *    close, mirrored to `segments.s3` when configured — and `{name}.mp4` is written from the
 *    first durable segment (the server's "started" check, §2);
 * 3. at the stop (`q` in `./stop`, or SIGTERM) the segments are stitched by stream copy into
 *    `{name}.mp4`, then `{id}.info`, the updated `.recording.{id}` and `{id}.jpg` are written,
 *    everything is made writable for all, and the segments are removed;
 * 4. a recording that ends before the stop (limit, failure) writes its files at once and waits
 *    for the stop: openvidu-server's stop execs into the container, which must still run.
 *
 * A container started for a recording whose media already exists (the previous container was
 * killed) continues it in a new period; the file then holds both. `failed` is written only
 * when there is no media at all.
 */
import { readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { stepOrigins } from "../../capture/index.js";
import { videoExcess, videoLimitsOf, VIDEO_UNITS, type Config } from "../../config/index.js";
import { MANIFEST, RecordingBucket, manifestSegmentCount, openviduMediaPlace, type Manifest, type MediaPlace } from "../../media/index.js";
import type { RecorderNode, SessionFactory } from "../../recorder/index.js";
import type { Recording, RecordingOptions, RecordingStore } from "../../store/index.js";
import { MeetrecError, errorMessage } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { sleep } from "../../util/process.js";
import type { OpenViduRecording } from "./env.js";
import { RecordingFolder, sealedFields, type InfoSummary } from "./files.js";
import type { StopFile } from "./stop-file.js";

/** The backend OpenVidu's recordings belong to (`backends.openvidu` in meetrec's configuration). */
export const OPENVIDU_BACKEND = "openvidu";

/**
 * How long the stop waits for segments still queued for the bucket, ms: the stitch reads the
 * local copies (kept), and the server allows 30 s from its `q` to the container's exit (§3).
 */
export const STOP_FLUSH_MS = 2000;

/** What a container recording needs from the process around it (the container host). */
export interface ContainerDeps {
  config: Config;
  log: Logger;
  store: RecordingStore;
  node: RecorderNode;
}

/** How a recording in the container ended, as the server will see it. */
export interface ContainerOutcome {
  /**
   * `stopped`: `{name}.mp4` and `{id}.info` are written (the server says `ready`); `failed`:
   * there was no media; `finished`: the recording was over before this container started
   * (nothing was touched).
   */
  status: "stopped" | "failed" | "finished";
  /** What `{id}.info` says, when it was written. */
  info?: InfoSummary;
}

/**
 * Names the layout page's origin (and the join steps') in `backends.openvidu.allowedOrigins`,
 * creating the backend when the configuration has none: the page openvidu-server passes is
 * allowed even on a private or loopback address (it is often `https://localhost:4443`), and
 * the recorder may navigate nowhere else. Call once, with the container's `URL`.
 */
export function addOpenViduBackend(config: Config, layoutUrl: string): void {
  const origins = [new URL(layoutUrl).origin, ...stepOrigins(config.openvidu.join)];
  const b = (config.backends[OPENVIDU_BACKEND] ??= { audioFormat: "aac", allowedOrigins: [], allowedRequestOrigins: ["public"], delivery: { webhooks: [] } });
  b.allowedOrigins = [...new Set([...b.allowedOrigins, ...origins])];
}

/** The video settings of a recording of `width` × `height` px at `fps`: odd sizes one pixel smaller (H.264 4:2:0 needs even ones), the backend's bitrate. */
export function openviduVideo(config: Config, width: number, height: number, fps: number): RecordingOptions["video"] {
  const even = (n: number) => n - (n % 2);
  return { width: even(width), height: even(height), fps, bitrateKbps: config.backends[OPENVIDU_BACKEND]?.video?.bitrateKbps ?? config.video.bitrateKbps };
}

/**
 * The meetrec recording options of `r`: the layout page (TLS not verified: the server's
 * certificate is often self-signed, and the official image ignores it too), `openvidu.join`,
 * Chromium, the picture alone when `ONLY_VIDEO`, the requested size and rate, the configured
 * duration ceiling. No `autoStop` of its own unless `backends.openvidu.autoStop` sets one:
 * openvidu-server stops a recording whose session emptied itself
 * (`OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT`, default 120 s), and a participant who returns before
 * that must still be in the file.
 * @throws MeetrecError `validation_failed` when the size or rate is above meetrec's `videoLimits`.
 */
export function recordingOptions(config: Config, r: OpenViduRecording): RecordingOptions {
  const b = config.backends[OPENVIDU_BACKEND];
  const video = openviduVideo(config, r.width, r.height, r.fps);
  const excess = videoExcess(video, videoLimitsOf(config, OPENVIDU_BACKEND));
  if (excess.length) {
    throw new MeetrecError("validation_failed", `OpenVidu asked for ${excess.map((e) => `${e.field} ${e.value} ${VIDEO_UNITS[e.field]}`).join(", ")}, above meetrec's ceiling (${excess.map((e) => `videoLimits.${e.field} = ${e.limit}`).join(", ")}); raise videoLimits (or backends.openvidu.videoLimits) in meetrec's configuration`);
  }
  return {
    url: r.url, join: config.openvidu.join, mode: "video", audio: r.audio, browser: "chromium", video,
    maxDurationSeconds: Math.min(config.maxDurationSeconds, b?.maxDurationSeconds ?? Infinity), acceptInsecureCerts: true,
    // openvidu-server's start check waits ≤ 30 s for a non-empty file: the recording begins on joining.
    start: { when: "joined", timeoutSeconds: 30 },
    autoStop: { emptySeconds: b?.autoStop?.emptySeconds ?? 0, idleSeconds: b?.autoStop?.idleSeconds ?? 0, ...(b?.autoStop?.endedSelector ? { endedSelector: b.autoStop.endedSelector } : {}) },
  };
}

/** The manifest in `dir`, or undefined when there is none (yet) or it cannot be read. */
async function readManifest(dir: string): Promise<Manifest | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as Manifest;
  } catch {
    return undefined;
  }
}

const exists = (path: string) => stat(path).then(() => true, () => false);

/**
 * Whether a container before this one captured media of the recording: its local manifest
 * lists segments — or, when `begun` (`.recording.{id}` was there before this container wrote
 * anything), the segment bucket's does. (Without `begun` a manifest in the bucket is a
 * recording of the same id the server has since deleted: ids are reused once their folder is gone.)
 * @throws the bucket's error when it cannot be read.
 */
async function capturedBefore(place: MediaPlace, id: string, begun: boolean): Promise<boolean> {
  const local = await readManifest(place.dir);
  if (local && manifestSegmentCount(local) > 0) return true;
  if (!place.bucket || !begun) return false;
  const remote = await new RecordingBucket(place.bucket, id).getManifest();
  return !!remote && manifestSegmentCount(remote) > 0;
}

/**
 * Writes `{name}.mp4` from the first period whose init and first media segment are on local
 * disk, once there is one (polled every 100 ms), unless the file has content already (a
 * container before this one wrote it). `stop()` ends the watch and waits for a write under way.
 */
function startFile(folder: RecordingFolder, mediaDir: string, log: Logger): { stop(): Promise<void> } {
  let stopped = false;
  const done = (async () => {
    if (await folder.hasMedia()) return;
    while (!stopped) {
      for (const p of (await readManifest(mediaDir))?.periods ?? []) {
        if (!p.init || p.segments.length === 0) continue;
        const parts = [p.init, p.segments[0].file].map((rel) => join(mediaDir, rel));
        if (!(await exists(parts[0])) || !(await exists(parts[1]))) continue;
        await folder.writeStartFile(parts);
        log.info({ period: p.index }, "the first media is durable: the media file exists for the server's start check");
        return;
      }
      await sleep(100);
    }
  })().catch((err: unknown) => log.warn({ err: errorMessage(err) }, "the media file for the server's start check could not be written"));
  return { async stop() { stopped = true; await done; } };
}

/**
 * Records `r` in this container until `stop` (see module doc) and writes the files the server
 * reads. Resolves once the stop was asked and every file is written. Never throws: what went
 * wrong is logged, and the server's `.info` check then says `failed`.
 * `opts.session`: how the capture session is made (the quick start hands over an open one).
 */
export async function recordInContainer(d: ContainerDeps, r: OpenViduRecording, stop: StopFile, opts: { session?: SessionFactory } = {}): Promise<ContainerOutcome> {
  const { config, store, node } = d;
  const log = d.log.child({ recordingId: r.id });
  const ffmpeg = config.capture.ffmpegPath;
  const folder = new RecordingFolder(config.openvidu.recordingsDir, r.id, r.name);
  const place = openviduMediaPlace(config, config.openvidu.recordingsDir, { id: r.id, backend: OPENVIDU_BACKEND });
  let info: InfoSummary | undefined;
  let final: Recording | undefined;
  try {
    await folder.create();
    if (await folder.finished()) {
      log.warn("this recording is already over (its thumbnail exists, or openvidu-server sealed it): nothing is recorded, nothing replaced");
      await stop.requested;
      return { status: "finished" };
    }
    const begun = await exists(folder.metadataFile);
    await folder.writeMetadataIfAbsent(r.recordingJson);
    const options = recordingOptions(config, r);
    const resume = await capturedBefore(place, r.id, begun);
    node.killLeftovers([place.root]);
    let rec = await store.create({ id: r.id, backend: OPENVIDU_BACKEND, options, metadata: {} });
    if (resume) {
      rec = await store.transition(r.id, "starting", { reason: "resumed" });
      await store.addEvent(r.id, { type: "interrupted", message: "A container before this one recorded this recording and stopped; continuing it in a new period" });
      log.warn("media of this recording exists: a container before this one was stopped; continuing in a new period");
    }
    log.info({ width: options.video.width, height: options.video.height, fps: options.video.fps, audio: r.audio, resume }, "recording for openvidu-server");
    const running = node.run(rec, { resume, session: opts.session, flushTimeoutMs: STOP_FLUSH_MS });
    const first = startFile(folder, place.dir, log);
    await Promise.race([stop.requested, running]);
    node.job(r.id)?.stop("stopped");
    await running;
    await first.stop();
    final = await store.get(r.id);
    if (final?.file) {
      await folder.publish(join(place.dir, final.file.name));
      info = await folder.writeInfo(config.capture.ffprobePath);
      log.info({ status: final.status, durationSeconds: info.durationSeconds, bytes: info.bytes }, "media file and info written");
    } else {
      log.warn({ status: final?.status, error: final?.error }, "no media file");
      const left = await readManifest(place.dir);
      // Nothing captured, nothing to keep; segments that could not be stitched stay for inspection.
      if (!left || manifestSegmentCount(left) === 0) await rm(place.root, { recursive: true, force: true });
      else log.warn({ dir: place.dir }, "the segments are kept");
    }
  } catch (err) {
    log.error({ code: (err as MeetrecError).code, err: errorMessage(err) }, "the recording could not be made");
  }
  if (!stop.stopped) log.info("waiting for openvidu-server's stop");
  await stop.requested;
  try {
    await folder.seal(sealedFields(info), r.recordingJson);
    if (info?.hasVideo) await folder.writeThumbnail(ffmpeg, info.durationSeconds, r.width, r.height);
    if (info) await removeSegments(place, r.id, log);
  } catch (err) {
    log.error({ err: errorMessage(err) }, "writing the files after the stop failed");
  }
  await folder.chmodAll();
  const status = info && (info.hasAudio || info.hasVideo) ? "stopped" : "failed";
  log.info({ status }, "done");
  return { status, info };
}

/**
 * How long the bucket's segments may take to delete at the end, ms: the server waits for the
 * container's exit (≤ 30 s from its `q`) before it reads `{id}.info`; segments a slow bucket
 * keeps are only garbage (`meetrec recover` in a cluster, or the bucket's lifecycle rules).
 */
export const BUCKET_CLEANUP_MS = 5000;

/**
 * Removes the recording's segments once `{name}.mp4` and its info are written: the media root
 * on the recordings folder, and the segment bucket's copies (waiting at most
 * {@link BUCKET_CLEANUP_MS}). A failure is logged, never thrown.
 */
async function removeSegments(place: MediaPlace, id: string, log: Logger): Promise<void> {
  await rm(place.root, { recursive: true, force: true }).catch((err: unknown) => log.warn({ err: errorMessage(err) }, "segments left on the recordings folder"));
  if (!place.bucket) return;
  const deleting = new RecordingBucket(place.bucket, id).deleteSegments().then(() => true, (err: unknown) => {
    log.warn({ err: errorMessage(err) }, "segments left in the bucket (delete failed)");
    return true;
  });
  if (!(await Promise.race([deleting, sleep(BUCKET_CLEANUP_MS).then(() => false)]))) log.warn({ waitedMs: BUCKET_CLEANUP_MS }, "segments left in the bucket (delete too slow)");
}
