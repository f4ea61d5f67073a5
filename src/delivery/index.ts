/**
 * delivery: hand finished recordings over and notify platforms, with retries. Targets form a
 * registry ({@link DeliveryTargets}) the hosts fill: meetrec's own are here, a platform's in
 * its folder (`platforms/talk/targets.ts`); so are the spool's packages (`files` here, PILOS's
 * tar in `platforms/pilos/`).
 */
export { DeliveryService, DeliveryPlanner, backoffMs } from "./service.js";
export { DeliveryTargets, DeliveryRefused, wants, type FileTarget, type NotifyTarget, type DeliveryContext, type DeliveryInputProblem, type RequestedRecording } from "./registry.js";
export { webhookTarget, eventType } from "./targets/webhook.js";
export { spoolTarget, filesPackage, deliverToSpool, spoolDir, isSafeSubdir, type SpoolPackage } from "./targets/spool.js";
export { s3Target, presignedUrl, deleteFromS3, s3Key, s3KeyMetadata, s3KeyProblems } from "./targets/s3.js";
export { emailTarget, isEmailAddress } from "./targets/email.js";
