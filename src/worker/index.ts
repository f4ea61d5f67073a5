/** worker: runs recordings on this machine (capture → media → store). */
export { RecordingJob, finalizeRecording, describeStreams, type JobDeps, type StopReason } from "./recording-job.js";
export { ClusterWorker, finalizeFromBucket } from "./cluster-worker.js";
