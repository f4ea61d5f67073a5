/**
 * The speakers sidecar `{file}.speakers.json`: who spoke when, in the finished file's own time,
 * delivered beside the file (spool, bucket) and served at `GET /v1/recordings/{id}/speakers`.
 * Built from the stored speaking stretches (capture/speaking.ts, or a platform adapter's) and
 * the file's timeline (`RecordingFile.timeline`, manifest.ts `fileTimeline`).
 *
 * ```json
 * {"version": 1, "file": "recording.mp4", "fileStartedAt": "2026-12-07T10:00:00.000Z",
 *  "sources": [{"id": "3/janusa0", "name": null}],
 *  "intervals": [{"source": "3/janusa0", "name": null, "start": 1.25, "end": 4.5,
 *                 "startedAt": "…", "endedAt": "…", "startType": "voice", "stopType": "silence"}]}
 * ```
 * `start` / `end`: seconds from the file's start (ms precision); a stretch in a gap between
 * periods is clamped to the next period's start, like every file time here.
 */
import type { FilePeriod, SpeakerInterval } from "../store/index.js";
import { fileTimeAt } from "./manifest.js";

/** The sidecar's shape (see module doc). */
export interface SpeakersFile {
  version: 1;
  file: string;
  /** Wall clock of the file's time 0 (its first period's start), ISO 8601; null when unknown. */
  fileStartedAt: string | null;
  sources: { id: string; name: string | null }[];
  intervals: { source: string; name: string | null; start: number; end: number; startedAt: string; endedAt: string; startType: string; stopType: string }[];
}

/** Name of the sidecar of the file named `fileName` (`recording.mp4` → `recording.mp4.speakers.json`). */
export function speakersFileName(fileName: string): string {
  return `${fileName}.speakers.json`;
}

/**
 * The sidecar of the file `fileName` laid out as `timeline`, from `stretches` (any order);
 * undefined when there are none (no sidecar is delivered). Without a timeline (files finalized
 * before meetrec kept one) file times are 0.
 */
export function speakersDocument(fileName: string, stretches: readonly SpeakerInterval[], timeline: readonly FilePeriod[] | undefined): SpeakersFile | undefined {
  if (stretches.length === 0) return undefined;
  const known = timeline && timeline.length > 0 ? timeline : undefined;
  const at = (ms: number) => (known ? Math.round(fileTimeAt(known, ms)) / 1000 : 0);
  const sorted = [...stretches].sort((a, b) => a.startMs - b.startMs);
  const names = new Map<string, string | null>();
  for (const s of sorted) if (!names.has(s.participantId) || s.participantName) names.set(s.participantId, s.participantName || null);
  return {
    version: 1, file: fileName, fileStartedAt: known ? new Date(known[0].wallMs).toISOString() : null,
    sources: [...names].map(([id, name]) => ({ id, name })),
    intervals: sorted.map((s) => ({
      source: s.participantId, name: s.participantName || null, start: at(s.startMs), end: at(s.stopMs),
      startedAt: new Date(s.startMs).toISOString(), endedAt: new Date(s.stopMs).toISOString(), startType: s.startType, stopType: s.stopType,
    })),
  };
}
