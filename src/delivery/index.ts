/** delivery: hand finished recordings over (spool, …) and notify platforms (webhooks), with retries. */
export { DeliveryService, DeliveryPlanner, fileTargets, checkDeliveryInputs, deliveryInputProblems, eventType, backoffMs, talkCallback, type DeliveryDeps, type DeliveryInputProblem } from "./service.js";
export { sendWebhook, type WebhookEvent } from "./targets/webhook.js";
export { deliverToSpool, spoolDir, spoolSubdir, isSafeSubdir } from "./targets/spool.js";
export { uploadToS3, presignedUrl, deleteFromS3, s3Key } from "./targets/s3.js";
export { sendRecordingMail, emailRecipient, isEmailAddress } from "./targets/email.js";
