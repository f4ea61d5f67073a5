/** media: where media lives (layout), the segment store and bucket, the manifest, finalize, probe, a recording's files. */
export { RecordingMedia } from "./segment-store.js";
export { finalize, type FinalFile } from "./finalize.js";
export { RecordingBucket, recordingsInBucket } from "./bucket.js";
export { SegmentMirror, type MirrorEvent } from "./mirror.js";
export { mediaStartSeconds, probe, type ProbeResult } from "./probe.js";
export { RecordingFiles, type FileSource } from "./files.js";
export {
  MANIFEST, PROCESS_REGISTRY, mediaRoots, recordingsDir, recordingDir, workRoot, workDir,
  runWorkDir, recoverRoot, periodDir, isFinalFileName, fileContentType, mediaPlace,
  openviduMediaPlace, trackNumber, type MediaPlace,
} from "./layout.js";
export {
  type Manifest, manifestDurationMs, manifestSegmentCount, manifestBytes, manifestFrames, toHlsPlaylist,
  periodGapMs, captureOrigin, fileTimeline, fileTimeAt,
} from "./manifest.js";
export { speakersDocument, speakersFileName, type SpeakersFile } from "./speakers.js";
export {
  TrackChunks, finalizeTracks, removeTrackChunks, readTrackIndex, trackByNumber, trackFileName, trackOffsetMs,
  trackAlignMs, MAX_CHUNK_BYTES, type TrackContainer,
} from "./tracks.js";
