/** Egress: where the recorder's browser and meetrec's own requests may go. */
export { EgressPolicy, addressRule, egressError, hostPort, isAllowEntry, type EgressRefusal, type EgressRule } from "./policy.js";
export { RequestGuard, browserEgressFor, type BrowserEgress } from "./guard.js";
export { EgressProxy } from "./proxy.js";
export { egressDispatcher } from "./http.js";
