/** media: where media lives (layout), the segment store and bucket, the manifest, finalize, probe, a recording's files. */
export { RecordingMedia, atomicWrite } from "./segment-store.js";
export { finalize, localThenRemote, DURATION_TOLERANCE_S, type FinalFile, type SegmentSource } from "./finalize.js";
export { RecordingBucket, recordingsInBucket } from "./bucket.js";
export { SegmentMirror, type MirrorHooks, type MirrorEvent } from "./mirror.js";
export { mediaStartSeconds, probe, type ProbeResult, type ProbeStream } from "./probe.js";
export { RecordingFiles, type FileSource } from "./files.js";
export {
  MANIFEST, PROCESS_REGISTRY, mediaRoot, mediaRoots, segmentBucket, recordingsDir, recordingDir, workRoot, workDir, runWorkDir, cacheDir, recoverRoot,
  periodDir, initSegmentPath, mediaSegmentPath, isSegmentPath, isPeriodPath, finalFileName, isFinalFileName, fileContentType, bucketKey, bucketRecordingsPrefix,
  epochManifest, isManifestPath, mediaPlace, openviduMediaRoot, openviduMediaPlace, type MediaPlace,
} from "./layout.js";
export {
  type Manifest, type ManifestPeriod, type ManifestSegment,
  manifestDurationMs, manifestSegmentCount, manifestBytes, playablePeriods, toHlsPlaylist, periodGapMs, captureOrigin, fileTimeline, fileTimeAt, pendingUploads, remoteView, type PendingUpload,
} from "./manifest.js";
export { speakersDocument, speakersFileName, type SpeakersFile } from "./speakers.js";
