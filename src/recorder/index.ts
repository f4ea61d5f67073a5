/** recorder: records on this machine — the node (pulse, capacity, metrics, jobs), one recording's run, its plan, recovery, the cluster worker's intake. */
export { RecorderNode } from "./node.js";
export { type JobObserver, type SessionFactory } from "./job.js";
export { planRecording, type PlanContext, type RecordingPlan } from "./plan.js";
export { Recovery, type RecoveryAction } from "./recovery.js";
export { ClusterIntake } from "./cluster-intake.js";
