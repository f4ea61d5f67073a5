/**
 * E-mail to the owner when a recording is ready (nodemailer over SMTP): plain text and HTML,
 * with the download link, duration and size. The `email` notify target.
 */
import nodemailer from "nodemailer";
import type { EmailTarget } from "../../config/index.js";
import type { Recording } from "../../store/index.js";
import { wants, type NotifyTarget } from "../registry.js";

/**
 * Whether `v` is an e-mail address as the mail delivery accepts it: `local@domain`, without
 * spaces or angle brackets. The one rule for addresses taken from metadata (`toFromMetadata`).
 */
export function isEmailAddress(v: unknown): v is string {
  return typeof v === "string" && v.length <= 254 && /^[^\s@<>]+@[^\s@<>]+$/.test(v);
}

/**
 * The owner's address: the recording's own `delivery.email.to`, else `metadata[toFromMetadata]`,
 * else the target's default `to`.
 */
export function emailRecipient(t: EmailTarget, rec: Pick<Recording, "options" | "metadata">): string | undefined {
  if (rec.options.delivery?.email?.to) return rec.options.delivery.email.to;
  const v = rec.metadata[t.toFromMetadata];
  return isEmailAddress(v) ? v : t.to;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Sends the "recording ready" mail. @throws the SMTP error (the delivery retries it).
 */
export async function sendRecordingMail(t: EmailTarget, to: string, r: { id: string; link: string; durationSeconds: number; bytes: number; title?: string }): Promise<string> {
  const transport = nodemailer.createTransport({
    host: t.smtp.host, port: t.smtp.port, secure: t.smtp.secure,
    ...(t.smtp.user ? { auth: { user: t.smtp.user, pass: t.smtp.password ?? "" } } : {}),
    connectionTimeout: 15000, greetingTimeout: 15000, socketTimeout: 60000,
  });
  const minutes = Math.floor(r.durationSeconds / 60);
  const seconds = Math.round(r.durationSeconds % 60);
  const length = `${minutes} min ${seconds} s`;
  const size = `${(r.bytes / 1048576).toFixed(1)} MiB`;
  const title = r.title ?? "Your meeting";
  try {
    const info = await transport.sendMail({
      from: t.from, to,
      subject: `Recording ready: ${title}`,
      text: `${title} was recorded (${length}, ${size}).\n\nDownload: ${r.link}\n\nRecording ${r.id}\n`,
      html: `<p>${esc(title)} was recorded (${esc(length)}, ${esc(size)}).</p><p><a href="${esc(r.link)}">Download the recording</a></p><p style="color:#777">Recording ${esc(r.id)}</p>`,
      headers: { "X-Meetrec-Recording": r.id },
    });
    return `sent to ${to} (${info.response})`;
  } finally {
    transport.close();
  }
}

/**
 * The `email` target: once a recording with a file is `completed` — so that its link is final
 * (a presigned bucket URL when the file is in S3) — its owner ({@link emailRecipient}) gets
 * the mail, unless the recording chose targets without `email` or there is no address. An
 * address in the metadata may be absent (then the target's `to`, or no mail) but must
 * otherwise be one ({@link isEmailAddress}).
 */
export const emailTarget: NotifyTarget = {
  name: "email",
  kind: "notify",
  plan(rec, backend) {
    const t = backend.delivery.email;
    return rec.status === "completed" && rec.file && t && wants(rec, "email") && emailRecipient(t, rec) ? [{ target: "email" }] : [];
  },
  inputProblems(rec, backend) {
    const t = backend.delivery.email;
    if (!t || !wants(rec, "email") || rec.options.delivery?.email?.to) return [];
    const v = rec.metadata[t.toFromMetadata];
    if (v === undefined || v === null || isEmailAddress(v)) return [];
    return [{ field: `metadata.${t.toFromMetadata}`, message: `metadata.${t.toFromMetadata} must be the owner's e-mail address (name@domain), got ${JSON.stringify(v)}; leave it out to send no mail` }];
  },
  async deliver(_d, rec, ctx) {
    const t = ctx.backend.delivery.email;
    const to = t && emailRecipient(t, rec);
    if (!t || !to || !rec.file) throw new Error(`backend ${rec.backend} has no e-mail target, or the recording has no owner address or file`);
    const link = (await ctx.fileUrl?.(rec)) ?? (ctx.describe(rec) as { file: { url: string } }).file.url;
    const title = typeof rec.metadata.title === "string" ? rec.metadata.title : undefined;
    return sendRecordingMail(t, to, { id: rec.id, link, durationSeconds: rec.file.durationSeconds, bytes: rec.file.bytes, title });
  },
};
