/** media: segment store, manifest, finalize, probe. */
export { RecordingMedia, atomicWrite, recordingDir } from "./segment-store.js";
export { finalize, finalFileName, localThenRemote, DURATION_TOLERANCE_S, type FinalFile, type SegmentSource } from "./finalize.js";
export { RecordingBucket, recordingsInBucket } from "./bucket.js";
export { SegmentMirror, type MirrorHooks } from "./mirror.js";
export { mediaStartSeconds, probe, type ProbeResult, type ProbeStream } from "./probe.js";
export {
  type Manifest, type ManifestPeriod, type ManifestSegment,
  manifestDurationMs, manifestSegmentCount, manifestBytes, playablePeriods, toHlsPlaylist, periodGapMs, captureOrigin, pendingUploads, remoteView, type PendingUpload,
} from "./manifest.js";
