/**
 * The manifest: `recordings/{id}/manifest.json`, rewritten atomically after every segment.
 * It is the source of truth for what media exists; finalize, the live playlist and recovery
 * read only this file and the segments it names.
 */
import type { FilePeriod, FrameCounts } from "../store/index.js";

/** One durable media segment. Paths are relative to the recording directory. */
export interface ManifestSegment {
  /** 1-based sequence within the period. */
  seq: number;
  /** `p{period}/{seq:06}.m4s`. */
  file: string;
  /** Start on the recording's media timeline (sum of all earlier segments), ms. */
  startMs: number;
  durationMs: number;
  bytes: number;
  /** Lowercase hex SHA-256 of the file. */
  sha256: string;
  /** Video: the encoder's frame counts over this segment (absent in manifests older than them). */
  frames?: FrameCounts;
  /** In the segment bucket (upload acknowledged); the local copy is gone (unless the recording keeps its segments). */
  remote?: boolean;
}

/** One encoder run: its own init segment and media segments. */
export interface ManifestPeriod {
  /** 1-based period number. */
  index: number;
  /** Why the period began: `start`, `encoder_restart`, … */
  reason: string;
  /** Wall-clock start of the encoder run (ISO 8601). */
  startedAt: string;
  /** `p{period}/init.mp4`, once written. */
  init?: string;
  initSha256?: string;
  /** The init segment is in the segment bucket; the local copy is gone. */
  initRemote?: boolean;
  segments: ManifestSegment[];
}

export interface Manifest {
  version: 1;
  recordingId: string;
  mode: "video" | "audio";
  /** Codec of the sound: `opus` (audio-only recordings finalized to Ogg); absent = `aac`. */
  audioCodec?: "aac" | "opus";
  segmentSeconds: number;
  periods: ManifestPeriod[];
  updatedAt: string;
}

/** Total media duration of all segments, ms. */
export function manifestDurationMs(m: Manifest): number {
  return m.periods.reduce((t, p) => t + p.segments.reduce((s, x) => s + x.durationMs, 0), 0);
}

/** Number of media segments over all periods. */
export function manifestSegmentCount(m: Manifest): number {
  return m.periods.reduce((t, p) => t + p.segments.length, 0);
}

/** Total bytes of init and media segments. */
export function manifestBytes(m: Manifest): number {
  return m.periods.reduce((t, p) => t + p.segments.reduce((s, x) => s + x.bytes, 0), 0);
}

/** The encoder's frame counts summed over every segment that has them; undefined when none has. */
export function manifestFrames(m: Manifest): FrameCounts | undefined {
  const counted = m.periods.flatMap((p) => p.segments.flatMap((s) => (s.frames ? [s.frames] : [])));
  if (counted.length === 0) return undefined;
  return counted.reduce((t, f) => ({ encoded: t.encoded + f.encoded, duplicated: t.duplicated + f.duplicated, dropped: t.dropped + f.dropped }), { encoded: 0, duplicated: 0, dropped: 0 });
}

/** Periods that have an init segment and at least one media segment (the ones finalize uses). */
export function playablePeriods(m: Manifest): ManifestPeriod[] {
  return m.periods.filter((p) => p.init && p.segments.length > 0);
}

/**
 * An HLS media playlist (RFC 8216) over the manifest: one EXT-X-MAP per period, periods
 * separated by EXT-X-DISCONTINUITY (§4.3.2.3), EXT-X-ENDLIST when `ended`.
 * `uri(file)` maps a manifest path to the URI written in the playlist.
 */
export function toHlsPlaylist(m: Manifest, ended: boolean, uri: (file: string) => string = (f) => f): string {
  const periods = playablePeriods(m);
  const maxMs = Math.max(m.segmentSeconds * 1000, ...periods.flatMap((p) => p.segments.map((s) => s.durationMs)));
  const lines = ["#EXTM3U", "#EXT-X-VERSION:7", `#EXT-X-TARGETDURATION:${Math.ceil(maxMs / 1000)}`,
    "#EXT-X-MEDIA-SEQUENCE:0", `#EXT-X-PLAYLIST-TYPE:${ended ? "VOD" : "EVENT"}`, "#EXT-X-INDEPENDENT-SEGMENTS"];
  periods.forEach((p, i) => {
    if (i > 0) lines.push("#EXT-X-DISCONTINUITY");
    lines.push(`#EXT-X-MAP:URI="${uri(p.init!)}"`);
    for (const s of p.segments) lines.push(`#EXTINF:${(s.durationMs / 1000).toFixed(3)},`, uri(s.file));
  });
  if (ended) lines.push("#EXT-X-ENDLIST");
  return lines.join("\n") + "\n";
}

/**
 * Media missing before period `index` (1-based), ms: the wallclock from the end of the previous
 * period's last stored segment to the start of period `index`. 0 for the first period or when
 * the previous period has no media (then its own start is used).
 */
export function periodGapMs(m: Manifest, index: number): number {
  const cur = m.periods.find((p) => p.index === index);
  const prev = m.periods.filter((p) => p.index < index).at(-1);
  if (!cur || !prev) return 0;
  const prevEnd = Date.parse(prev.startedAt) + prev.segments.reduce((t, s) => t + s.durationMs, 0);
  return Math.max(0, Date.parse(cur.startedAt) - prevEnd);
}

/** Wallclock (ms since epoch) the recording's first period started, if any: where its duration limit counts from. */
export function captureOrigin(m: Manifest): number | undefined {
  return m.periods.length ? Date.parse(m.periods[0].startedAt) : undefined;
}

/**
 * Where each playable period lies in the file finalize makes of `m`: periods follow each other
 * without the gaps between them, each starting at its media time 0 — its `startedAt`, which is
 * the encoder's origin (the sound is padded from there; `encoder.ts`) — and lasting as long as
 * its segments.
 */
export function fileTimeline(m: Manifest): FilePeriod[] {
  let fileMs = 0;
  return playablePeriods(m).map((p) => {
    const durationMs = p.segments.reduce((t, s) => t + s.durationMs, 0);
    const period = { fileMs, wallMs: Date.parse(p.startedAt), durationMs };
    fileMs += durationMs;
    return period;
  });
}

/**
 * The file time (ms from the start of the file) that shows wall clock `wallMs` (ms since the
 * epoch), by `timeline` ({@link fileTimeline}): before the first period → 0; in a gap between
 * periods → the start of the next one; after the end → the end of the file.
 */
export function fileTimeAt(timeline: readonly FilePeriod[], wallMs: number): number {
  let at = 0;
  for (const p of timeline) {
    if (wallMs < p.wallMs) return p.fileMs;
    at = p.fileMs + Math.min(wallMs - p.wallMs, p.durationMs);
    if (wallMs - p.wallMs <= p.durationMs) return at;
  }
  return at;
}

/** A file of the manifest still to be uploaded to the segment bucket. */
export interface PendingUpload {
  period: number;
  /** `init`, or the media segment's sequence number. */
  item: "init" | number;
  /** Path relative to the recording directory. */
  file: string;
  bytes?: number;
}

/** Files not yet in the segment bucket, in upload order (each period's init before its segments). */
export function pendingUploads(m: Manifest): PendingUpload[] {
  const out: PendingUpload[] = [];
  for (const p of m.periods) {
    if (p.init && !p.initRemote) out.push({ period: p.index, item: "init", file: p.init });
    for (const s of p.segments) if (!s.remote) out.push({ period: p.index, item: s.seq, file: s.file, bytes: s.bytes });
  }
  return out;
}

/**
 * What the segment bucket holds: the manifest cut to uploaded files (a period whose init is not
 * uploaded yet is listed without segments). Another machine continuing the recording reads this.
 */
export function remoteView(m: Manifest): Manifest {
  return {
    ...m,
    periods: m.periods.map((p) => p.init && p.initRemote
      ? { ...p, segments: p.segments.filter((s) => s.remote) }
      : { index: p.index, reason: p.reason, startedAt: p.startedAt, segments: [] }),
  };
}
