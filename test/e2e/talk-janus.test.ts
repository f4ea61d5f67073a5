/**
 * The Talk join adapter in a real call: a Talk double (inside the meeting's network namespace)
 * whose recording page offers OCA.Talk — checking every HMAC like Talk and its signaling server —
 * and then shows the Janus VideoRoom call with its two publishers. meetrec, in the same
 * namespace, is asked by "Talk" to record; the uploaded file must show and sound like the call.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { HIGH_MOTION_PUBLISHERS } from "../../dev/fake-media.js";
import { REPO_ROOT, startMeeting, type Meeting } from "../../dev/meeting.js";
import { TalkDouble } from "../fixtures/talk-double.js";
import { checkMeeting, probe } from "../../dev/media-check.js";
import { startServer, type TestServer } from "../../dev/server.js";
import { scratchDir } from "../helpers/scratch.js";

const SECRET = randomBytes(24).toString("hex");
const INTERNAL = randomBytes(16).toString("hex");
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../fixtures");

let meeting: Meeting;
let server: TestServer;
let host: ChildProcess;
const seen: Record<string, any[]> = { callbacks: [], uploads: [], joins: [], kills: [], settingsRequests: [], refused: [] };
const signer = new TalkDouble(SECRET); // signs Talk's requests; the double itself runs in the namespace
const acks = new Map<string, () => void>();

/** Tells the double in the namespace what Talk itself did (a start / stop), and waits until it has it. */
function tellDouble(cmd: unknown): Promise<void> {
  const line = JSON.stringify(cmd);
  return new Promise((resolve) => { acks.set(line, resolve); host.stdin!.write(line + "\n"); });
}

beforeAll(async () => {
  // High-motion publishers (moving texture with temporal noise): the one e2e test whose
  // content an encoder finds hard, judged tile by tile like the flat ones.
  meeting = await startMeeting({ publishers: HIGH_MOTION_PUBLISHERS });
  const out = scratchDir("meetrec-talk-janus-");
  const argv = meeting.netns.exec([process.execPath, "--import", "tsx", join(FIXTURES, "talk-double-host.ts"), "--secret", SECRET, "--internal", INTERNAL, "--demos", meeting.demosDir, "--out", out]);
  host = spawn(argv[0], argv.slice(1), { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "inherit"] });
  signer.url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: host.stdout! }).on("line", (line) => {
      const msg = JSON.parse(line);
      if (msg.ready) resolve(msg.url);
      else if (msg.ack) acks.get(msg.ack)?.();
      else seen[msg.kind].push(msg.item);
    });
    host.once("exit", (c) => reject(new Error(`Talk double exited (${c})`)));
  });
  server = await startServer({ netns: meeting.netns, startWhen: "media", config: {
    delivery: { retry: { initialDelayMs: 300, maxDelayMs: 2000, factor: 2 }, pollIntervalMs: 100 },
    backends: { cloud: { talk: { url: signer.url, secret: SECRET }, allowedRequestOrigins: [meeting.janusOrigin], video: { width: 1280, height: 720, fps: 25 } } },
    talk: { signaling: { internalSecret: INTERNAL } },
  } });
}, 150_000);

afterAll(async () => {
  await server?.stop();
  if (host && host.exitCode === null) {
    host.kill("SIGTERM");
    await new Promise((r) => host.once("exit", r));
  }
  await meeting?.stop();
});

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; seen ${JSON.stringify(seen).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("Talk records a real call", () => {
  test("start → join through OCA.Talk → the Janus call is recorded → stop → upload shows and sounds like the call", async () => {
    const start = { type: "start", start: { status: 1, owner: "alice", actor: { type: "users", id: "alice" } } };
    await tellDouble({ expectStart: ["call42", 1, "alice", { type: "users", id: "alice" }] });
    expect((await signer.roomRequest(server.socket, "call42", start)).status).toBe(200);
    await until("started", () => seen.callbacks.find((c) => c.body.type === "started"));
    expect(seen.settingsRequests).toEqual([{ token: "call42", ok: true }]);
    expect(seen.joins).toEqual([{ token: "call42", ok: true, backend: signer.url }]);
    await new Promise((r) => setTimeout(r, 12_000));
    await tellDouble({ expectStop: ["call42", { type: "users", id: "alice" }] });
    expect((await signer.roomRequest(server.socket, "call42", { type: "stop", stop: { actor: { type: "users", id: "alice" } } })).status).toBe(200);
    const upload = await until("upload", () => seen.uploads.find((u) => u.token === "call42"));
    expect(seen.kills.map((k) => k.token)).toEqual(["call42"]);
    expect(upload.contentType).toBe("video/mp4"); // sniffed from the bytes, as Talk does
    await new Promise((r) => setTimeout(r, 300)); // the host streams what it saw every 100 ms
    expect(seen.refused).toEqual([]);
    const file = join(server.dir, "talk-call.mp4");
    writeFileSync(file, readFileSync(upload.path));
    // From the first second the call shows (Talk's page joins the call first) to the end: both
    // tiles on screen and moving, both tones sounding, window by window.
    const { durationS } = probe(file);
    expect(durationS).toBeGreaterThanOrEqual(10);
    checkMeeting(file, meeting.publishers, { spans: [{ from: 4, to: durationS }] });
  });
});
