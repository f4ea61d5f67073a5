/** dispatch: hands recordings to workers. Embedded mode: an in-process pool. */
export { InProcessDispatcher, type Runner, type RunningJob, type StopOutcome } from "./in-process.js";
export { Capacity, type CapacitySettings, type CapacitySnapshot, type RecordingKind, type Refusal } from "./capacity.js";
