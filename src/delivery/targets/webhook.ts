/**
 * Webhooks signed per the Standard Webhooks specification (standardwebhooks.com): headers
 * `webhook-id`, `webhook-timestamp` (Unix seconds), `webhook-signature` (`v1,` + base64
 * HMAC-SHA256 over `id.timestamp.body` with the base64-decoded `whsec_` secret). Signing is
 * done by the `standardwebhooks` library. The `webhook:` targets: one per configured webhook
 * (`webhook:{name}`, default its position), told about every status change.
 */
import { Webhook } from "standardwebhooks";
import type { WebhookTarget } from "../../config/index.js";
import { egressDispatcher, type EgressPolicy } from "../../egress/index.js";
import type { RecordingStatus } from "../../store/index.js";
import { wants, type NotifyTarget } from "../registry.js";

/** The body of every webhook: `{type, timestamp, data}` (Standard Webhooks payload structure). */
export interface WebhookEvent {
  type: string;
  timestamp: string;
  data: unknown;
}

/**
 * POSTs `event` to `target.url`. `msgId` is stable across retries of the same event, so a
 * receiver can drop duplicates. Resolves on any 2xx. Redirects are not followed; the connection
 * goes through `egress` (the URL is named by the operator, so any address is allowed).
 * @throws Error naming the HTTP status (and the start of the answer) or the network error.
 */
export async function sendWebhook(target: WebhookTarget, msgId: string, event: WebhookEvent, timeoutMs: number, egress: EgressPolicy): Promise<string> {
  const body = JSON.stringify(event);
  const now = new Date();
  const signature = new Webhook(target.secret).sign(msgId, now, body);
  let res: Response;
  try {
    res = await fetch(target.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "meetrec-webhooks/0.1",
        "webhook-id": msgId,
        "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
        "webhook-signature": signature,
      },
      body,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: "manual",
      // The operator wrote this URL into the configuration: named, so allowed on any address.
      dispatcher: egressDispatcher(egress, target.url, { named: true }),
    } as RequestInit);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`${new URL(target.url).origin} unreachable: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const text = (await res.text().catch(() => "")).slice(0, 200);
  if (res.status < 200 || res.status > 299) throw new Error(`${new URL(target.url).origin} answered ${res.status}${text ? `: ${text}` : ""}`);
  return `HTTP ${res.status}`;
}

/** Webhook event type for a status change (Standard Webhooks `type`). */
export function eventType(to: RecordingStatus): string {
  if (to === "recording") return "recording.started";
  if (to === "completed") return "recording.completed";
  if (to === "failed" || to === "aborted") return "recording.failed";
  return "recording.updated";
}

function webhookName(w: WebhookTarget, i: number): string {
  return `webhook:${w.name ?? i}`;
}

/**
 * The `webhook:{name}` targets: on every status change, each of the backend's webhooks (unless
 * the recording chose targets without `webhooks`) whose `events` include the change's type gets
 * the event `{type, timestamp, data: the recording}`, one timestamp for all of them. The
 * attempt signs it with the delivery's id as `webhook-id` ({@link sendWebhook}).
 */
export const webhookTarget: NotifyTarget = {
  name: "webhook:",
  kind: "notify",
  plan(rec, backend, change) {
    const type = eventType(rec.status);
    const event: WebhookEvent = { type, timestamp: new Date().toISOString(), data: change.view };
    return (wants(rec, "webhooks") ? backend.delivery.webhooks : []).flatMap((w, i) =>
      w.events && !w.events.includes(type as never) ? [] : [{ target: webhookName(w, i), payload: event }]);
  },
  async deliver(d, rec, ctx) {
    const name = d.target.slice("webhook:".length);
    const w = ctx.backend.delivery.webhooks.find((x, i) => (x.name ?? String(i)) === name);
    if (!w) throw new Error(`webhook ${name} is no longer configured for backend ${rec.backend}`);
    const event = d.payload as WebhookEvent;
    return sendWebhook(w, d.id, { ...event, data: ctx.withBase(event.data) }, ctx.config.delivery.attemptTimeoutMs, ctx.egress);
  },
};
