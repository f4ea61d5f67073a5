/**
 * Where a recording's media lives — every path on disk and every key in a bucket is made
 * here, and nowhere else (DESIGN.md "Segments are the unit of safety", layout).
 *
 * On disk, under a media root (the backend's `dataDir`, else the global one):
 * - `recordings/{id}/manifest.json`, `recordings/{id}/p{period}/init.mp4`,
 *   `recordings/{id}/p{period}/{seq:06}.m4s`, `recordings/{id}/recording.mp4|m4a`;
 * - `recordings/{id}/tracks/{n}.webm|ogg` and `recordings/{id}/tracks/index.json`: per-participant
 *   chunks while recording (`tracks: true`, tracks.ts), `recordings/{id}/{file}.track-{n}.ogg`
 *   the finished tracks;
 * - `work/{id}/{run}/`: a capture run's scratch (encoder output before it is stored, the
 *   process registry `pids.json`), one directory per run and machine.
 * Under the global `dataDir` only: `cache/{id}/` (local copies of files kept in a bucket) and
 * `recover/` (scratch of `meetrec recover` in a cluster).
 *
 * OpenVidu's recording container keeps each recording's media on the recordings folder the
 * server binds into it, beside the files the server reads: media root `{recordingsDir}/{id}/.meetrec`.
 *
 * In a segment bucket: `{prefix}recordings/{id}/` + the same relative names, and
 * `…/manifests/{epoch:010}.json` for a cluster lease holder's manifest.
 */
import { join } from "node:path";
import type { Config, SegmentBucket } from "../config/index.js";

/** The manifest's name in a recording's directory or bucket prefix. */
export const MANIFEST = "manifest.json";
/** The process registry's name in a session's work directory. */
export const PROCESS_REGISTRY = "pids.json";

/** The media root of `backend`'s recordings: its own `dataDir`, else the global one. */
export function mediaRoot(config: Config, backend: string): string {
  return config.backends[backend]?.dataDir ?? config.dataDir;
}

/** Every media root of the configuration (the global `dataDir` first), without repeats. */
export function mediaRoots(config: Config): string[] {
  return [...new Set([config.dataDir, ...Object.keys(config.backends).map((b) => mediaRoot(config, b))])];
}

/** The segment bucket of `backend`'s recordings (its own, else the global one), if any. */
export function segmentBucket(config: Config, backend: string): SegmentBucket | undefined {
  return config.backends[backend]?.segments?.s3 ?? config.segments.s3;
}

/** `{root}/recordings`: the parent of every recording directory under a media root. */
export function recordingsDir(root: string): string {
  return join(root, "recordings");
}

/** Directory of a recording's media under a media root: `{root}/recordings/{id}`. */
export function recordingDir(root: string, recordingId: string): string {
  return join(recordingsDir(root), recordingId);
}

/** `{root}/work`: the parent of every capture session's scratch directory. */
export function workRoot(root: string): string {
  return join(root, "work");
}

/** The parent of a recording's capture runs' scratch directories: `{root}/work/{id}`. */
export function workDir(root: string, recordingId: string): string {
  return join(workRoot(root), recordingId);
}

/**
 * One capture run's scratch directory: `{root}/work/{id}/{run}`, `run` = the meetrec process's
 * pid by default. One per run and machine, so a run that takes a recording over on the same
 * machine (a restarted worker, two workers sharing a backend's `dataDir`) never overwrites the
 * process registry of a run that was killed.
 */
export function runWorkDir(root: string, recordingId: string, run: string = String(process.pid)): string {
  return join(workDir(root, recordingId), run);
}

/** Where local copies of files kept in a bucket go: `{dataDir}/cache/{id}`. */
export function cacheDir(config: Config, recordingId: string): string {
  return join(config.dataDir, "cache", recordingId);
}

/** Scratch media root of `meetrec recover` in a cluster: `{dataDir}/recover`. */
export function recoverRoot(config: Config): string {
  return join(config.dataDir, "recover");
}

/** A period's directory, relative to the recording's: `p{period}`. */
export function periodDir(period: number): string {
  return `p${period}`;
}

/** A period's init segment, relative to the recording's directory: `p{period}/init.mp4`. */
export function initSegmentPath(period: number): string {
  return `${periodDir(period)}/init.mp4`;
}

/** A media segment, relative to the recording's directory: `p{period}/{seq:06}.m4s`. */
export function mediaSegmentPath(period: number, seq: number): string {
  return `${periodDir(period)}/${String(seq).padStart(6, "0")}.m4s`;
}

/** Whether `rel` names an init or media segment (`p{n}/init.mp4`, `p{n}/{seq:06}.m4s`). */
export function isSegmentPath(rel: string): boolean {
  return /^p\d{1,6}\/(init\.mp4|\d{6}\.m4s)$/.test(rel);
}

/** Whether `rel` is a file in a period's directory (`p{n}/…`): segments and a period's scratch. */
export function isPeriodPath(rel: string): boolean {
  return /^p\d+\/[^/]+$/.test(rel);
}

/**
 * The finished file's name: `recording.mp4` for video; for audio only `recording.m4a` (AAC),
 * or `recording.ogg` when the sound is Opus.
 */
export function finalFileName(mode: "video" | "audio", audioCodec: "aac" | "opus" = "aac"): string {
  if (mode === "video") return "recording.mp4";
  return audioCodec === "opus" ? "recording.ogg" : "recording.m4a";
}

/** The per-participant chunk directory, relative to the recording's directory (media/tracks.ts). */
export const TRACKS_DIR = "tracks";
/** The index of the chunk files, relative to the recording's directory. */
export const TRACKS_INDEX = `${TRACKS_DIR}/index.json`;

/** A chunk file's path, relative to the recording's directory: `tracks/{n}.{container}` (`webm` or `ogg`). */
export function trackChunkPath(n: number, container: "webm" | "ogg"): string {
  return `${TRACKS_DIR}/${n}.${container}`;
}

/** The finished track file's name beside the file named `fileName`: `recording.mp4` → `recording.mp4.track-3.ogg`. */
export function trackFileName(fileName: string, n: number): string {
  return `${fileName}.track-${n}.ogg`;
}

/** The track number in a finished track file's name (`recording.mp4.track-3.ogg` → 3); undefined for another name. */
export function trackNumber(trackName: string): number | undefined {
  const m = /\.track-(\d+)\.ogg$/.exec(trackName);
  return m ? Number(m[1]) : undefined;
}

/** Whether `name` is a finished file's name. */
export function isFinalFileName(name: string): boolean {
  return /^recording\.(mp4|m4a|ogg)$/.test(name);
}

/** The media type of a finished file, by its name: `video/mp4`, `audio/mp4` (`.m4a`), `audio/ogg` (`.ogg`). */
export function fileContentType(name: string): string {
  if (name.endsWith(".ogg")) return "audio/ogg";
  if (name.endsWith(".m4a")) return "audio/mp4";
  return "video/mp4";
}

/** `{prefix}recordings/`: where every recording's objects start in a segment bucket. */
export function bucketRecordingsPrefix(cfg: SegmentBucket): string {
  return `${cfg.prefix}recordings/`;
}

/** The key of `rel` (relative to the recording's directory) in a segment bucket. */
export function bucketKey(cfg: SegmentBucket, recordingId: string, rel: string): string {
  return `${bucketRecordingsPrefix(cfg)}${recordingId}/${rel}`;
}

/** A lease holder's manifest, relative to the recording's prefix; zero-padded so that keys sort by epoch. */
export function epochManifest(epoch: number): string {
  return `manifests/${String(epoch).padStart(10, "0")}.json`;
}

/** Whether `rel` (relative to a recording's prefix) is a manifest: `manifest.json` or an epoch's. */
export function isManifestPath(rel: string): boolean {
  return rel === MANIFEST || /^manifests\/\d{10}\.json$/.test(rel);
}

/** Where one recording's media is: its media root, directories and segment bucket. */
export interface MediaPlace {
  /** The media root (backend's `dataDir`, else the global one). */
  root: string;
  /** `{root}/recordings/{id}`. */
  dir: string;
  /** This run's scratch: `{root}/work/{id}/{pid}`. */
  workDir: string;
  /** The segment bucket, when segments are mirrored to one. */
  bucket?: SegmentBucket;
}

/** The {@link MediaPlace} of recording `rec`. */
export function mediaPlace(config: Config, rec: { id: string; backend: string }): MediaPlace {
  const root = mediaRoot(config, rec.backend);
  const bucket = segmentBucket(config, rec.backend);
  return { root, dir: recordingDir(root, rec.id), workDir: runWorkDir(root, rec.id), ...(bucket ? { bucket } : {}) };
}

/**
 * The media root of OpenVidu recording `recordingId` in the container (`meetrec
 * openvidu-recorder`): `{recordingsDir}/{id}/.meetrec`, on the recordings folder the server binds
 * into the container, so segments survive the container (shared/protocols/openvidu-recording.md
 * §7.8) and the server's delete of `{id}/` removes them too.
 */
export function openviduMediaRoot(recordingsDir: string, recordingId: string): string {
  return join(recordingsDir, recordingId, ".meetrec");
}

/** The {@link MediaPlace} of OpenVidu recording `rec` in the container: under {@link openviduMediaRoot}, with its backend's segment bucket. */
export function openviduMediaPlace(config: Config, recordingsDir: string, rec: { id: string; backend: string }): MediaPlace {
  const root = openviduMediaRoot(recordingsDir, rec.id);
  const bucket = segmentBucket(config, rec.backend);
  return { root, dir: recordingDir(root, rec.id), workDir: runWorkDir(root, rec.id), ...(bucket ? { bucket } : {}) };
}
