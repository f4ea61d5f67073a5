/** dispatch: hands recordings to recorders — an in-process pool (embedded), a BullMQ queue with its bus, leader and reconciler (cluster) — and admission by capacity. */
export { InProcessDispatcher, type Runner, type RunningJob } from "./in-process.js";
export type { Dispatcher, Readiness, StopOutcome } from "./types.js";
export { QueueDispatcher, ClusterBus, addRecordJob, recordJobState, redisConnection, type RecordJobData } from "./queue.js";
export { Capacity, MIN_VIDEO_COST_FACTOR, REFERENCE_VIDEO, recordingCost, type CapacitySettings, type CapacitySnapshot, type RecordingKind, type Refusal, type Workload } from "./capacity.js";
export { JobReconciler, MAX_FAILED_REQUEUES, type Requeued, type ReconcilerStore, type ReconcilerEvent } from "./reconciler.js";
export { Leadership, type LeadershipDeps } from "./leader.js";
