/** dispatch: hands recordings to workers. Embedded mode: an in-process pool. */
export { InProcessDispatcher, type Runner, type RunningJob } from "./in-process.js";
export type { Dispatcher, Readiness, StopOutcome } from "./types.js";
export { QueueDispatcher, ClusterBus, type RecordJobData } from "./queue.js";
export { Capacity, MIN_VIDEO_COST_FACTOR, REFERENCE_VIDEO, recordingCost, type CapacitySettings, type CapacitySnapshot, type RecordingKind, type Refusal, type Workload } from "./capacity.js";
export { JobReconciler, MAX_FAILED_REQUEUES, type Requeued, type ReconcilerStore } from "./reconciler.js";
