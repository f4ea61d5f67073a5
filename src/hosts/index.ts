/** hosts: the composition roots — embedded, cluster API, cluster worker — and the delivery targets they install. */
export { EmbeddedHost } from "./embedded.js";
export { ClusterApiHost } from "./cluster-api.js";
export { ClusterWorkerHost } from "./cluster-worker.js";
export { deliveryTargets } from "./targets.js";
export { recoverCluster } from "./cluster-recovery.js";
