/** media: segment store, manifest, finalize, probe. */
export { RecordingMedia, atomicWrite, recordingDir } from "./segment-store.js";
export { finalize, finalFileName, DURATION_TOLERANCE_S, type FinalFile } from "./finalize.js";
export { probe, type ProbeResult, type ProbeStream } from "./probe.js";
export {
  type Manifest, type ManifestPeriod, type ManifestSegment,
  manifestDurationMs, manifestSegmentCount, manifestBytes, playablePeriods, toHlsPlaylist, periodGapMs, captureOrigin,
} from "./manifest.js";
