/** delivery: hand finished recordings over (spool, …) and notify platforms (webhooks), with retries. */
export { DeliveryService, fileTargets, eventType, backoffMs, talkCallback, type DeliveryDeps } from "./service.js";
export { sendWebhook, type WebhookEvent } from "./webhook.js";
export { deliverToSpool, spoolDir } from "./spool.js";
