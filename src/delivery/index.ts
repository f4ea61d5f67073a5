/** delivery: hand finished recordings over (spool, …) and notify platforms (webhooks), with retries. */
export { DeliveryService, fileTargets, eventType, backoffMs, talkCallback, type DeliveryDeps } from "./service.js";
export { sendWebhook, type WebhookEvent } from "./webhook.js";
export { deliverToSpool, spoolDir } from "./spool.js";
export { uploadToS3, presignedUrl, deleteFromS3, s3Key } from "./s3.js";
export { sendRecordingMail, emailRecipient } from "./email.js";
