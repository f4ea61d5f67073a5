/**
 * E-mail to the owner through a real SMTP server (smtp-server on 127.0.0.1): the first attempt
 * is refused, the retry is delivered; the mail has text and HTML parts with the link.
 */
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startSyncPage, type SyncPage } from "../../dev/sync-page.js";
import { startServer, type TestServer } from "../../dev/server.js";

let page: SyncPage;
let server: TestServer;
let smtp: SMTPServer;
const mails: { from: string; to: string[]; raw: string }[] = [];
let refuseFirst = 1;

beforeAll(async () => {
  page = await startSyncPage();
  smtp = new SMTPServer({
    authOptional: true, disabledCommands: ["STARTTLS"], logger: false,
    onRcptTo(address, _session, cb) {
      if (refuseFirst-- > 0) return cb(Object.assign(new Error("mailbox busy, try later"), { responseCode: 451 }));
      cb();
    },
    onData(stream, session, cb) {
      let raw = "";
      stream.on("data", (d) => (raw += d));
      stream.on("end", () => {
        mails.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "", to: session.envelope.rcptTo.map((r) => r.address), raw });
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, "127.0.0.1", r));
  const port = (smtp.server.address() as { port: number }).port;
  server = await startServer({ egress: { allowedOrigins: [page.origin] }, config: {
    publicUrl: "https://rec.example.com",
    delivery: { retry: { initialDelayMs: 300, maxDelayMs: 1000, factor: 2 }, pollIntervalMs: 100 },
    backends: { default: { apiKey: "test-key-0123456789abcdef", delivery: { email: { smtp: { host: "127.0.0.1", port, secure: false }, from: "meetrec <rec@example.com>" } } } },
  } });
});

afterAll(async () => {
  await server?.stop();
  await new Promise((r) => smtp?.close(() => r(undefined)));
  await page?.close();
});

describe("e-mail delivery", () => {
  test("the owner gets a mail with the link once the recording is completed, after a refused first try", async () => {
    const { id } = (await server.api("POST", "/v1/recordings", { url: page.url, maxDurationSeconds: 4, video: { width: 320, height: 180, fps: 10 }, metadata: { ownerEmail: "alice@example.org", title: "Team <sync>" } })).json();
    await server.waitFor(id, (r) => r.status === "completed", 60_000);
    const rec = await server.waitFor(id, (r) => r.deliveries.some((d: any) => d.target === "email" && d.status === "succeeded"), 20_000);
    const email = rec.deliveries.find((d: any) => d.target === "email");
    expect(email.attempts.map((a: any) => a.outcome)).toEqual(["error", "ok"]);
    expect(email.attempts[0].message).toMatch(/451|busy/);
    expect(mails).toHaveLength(1);
    const m = mails[0];
    expect(m.from).toBe("rec@example.com");
    expect(m.to).toEqual(["alice@example.org"]);
    const raw = m.raw.replace(/=\r?\n/g, "");
    expect(raw).toMatch(/^Subject: Recording ready: Team <sync>/m);
    expect(raw).toMatch(/^X-Meetrec-Recording: /m);
    expect(raw).toContain("Content-Type: text/plain");
    expect(raw).toContain("Content-Type: text/html");
    expect(raw).toContain(`https://rec.example.com/v1/recordings/${id}/file`);
    expect(raw).toContain("Team &#60;sync&#62;"); // escaped in the HTML part
  });

  test("no owner address and no default recipient → no mail, nothing pending", async () => {
    const { id } = (await server.api("POST", "/v1/recordings", { url: page.url, maxDurationSeconds: 3, video: { width: 320, height: 180, fps: 10 } })).json();
    const rec = await server.waitFor(id, (r) => r.status === "completed", 60_000);
    expect(rec.deliveries.filter((d: any) => d.target === "email")).toEqual([]);
  });
});
