/** dispatch: hands recordings to recorders — an in-process pool (embedded), a BullMQ queue with its bus, leader and reconciler (cluster) — and admission by capacity. */
export { InProcessDispatcher, type RunningJob } from "./in-process.js";
export type { Dispatcher, Readiness } from "./types.js";
export { QueueDispatcher, ClusterBus, addRecordJob, recordJobState, redisConnection, type RecordJobData } from "./queue.js";
export { Capacity, MIN_VIDEO_COST_FACTOR, recordingCost, type CapacitySnapshot, type Refusal } from "./capacity.js";
export { JobReconciler, MAX_FAILED_REQUEUES } from "./reconciler.js";
export { Leadership } from "./leader.js";
