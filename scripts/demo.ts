/**
 * `make demo`: records a real meeting end to end through the API.
 *
 * Brings up a Janus VideoRoom meeting with two fake publishers (magenta camera + 440 Hz,
 * yellow camera + 1000 Hz) in a private network namespace, starts `meetrec serve` inside it,
 * asks it over the API to record the meeting, stops after ~15 s, and prints where the file
 * is and what it contains. Everything it started, it stops. Needs root (network namespace).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT, startMeeting, type Meeting } from "../dev/meeting.js";
import { audioSamples, colourFraction, frameRgb, toneLevelsDb } from "../dev/media-check.js";
import { startServer, type TestServer } from "../dev/server.js";

const RECORD_SECONDS = 15;
const say = (s: string) => process.stdout.write(s + "\n");

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    say("make demo needs root: it creates a private network namespace for the meeting (Janus will not send media over loopback).");
    return 1;
  }
  const dataDir = join(REPO_ROOT, "data", "demo");
  mkdirSync(dataDir, { recursive: true });
  let meeting: Meeting | undefined;
  let server: TestServer | undefined;
  try {
    say("1/5 starting a Janus VideoRoom meeting with two publishers (alice: magenta + 440 Hz, bob: yellow + 1000 Hz) …");
    meeting = await startMeeting();
    say(`    meeting is up: ${meeting.viewerUrl} (inside network namespace ${meeting.netns.name})`);
    say("2/5 starting meetrec serve in the same namespace …");
    server = await startServer({ netns: meeting.netns, dataDir, egress: meeting.egress, startWhen: "media", env: { MEETREC_LOG_LEVEL: "info" } });
    say(`    API on ${server.socket}; server log: ${join(server.dir, "server.log")}`);
    say("3/5 POST /v1/recordings …");
    const res = await server.api("POST", "/v1/recordings", { url: meeting.viewerUrl, join: meeting.joinSteps("meetrec"), metadata: { demo: true } });
    if (res.status !== 201) throw new Error(`POST /v1/recordings answered ${res.status}: ${res.body}`);
    const id = res.json().id as string;
    say(`    recording ${id} created`);
    const t0 = Date.now();
    const tty = process.stdout.isTTY;
    let rec: any;
    let recordingSince: number | undefined;
    let stopSent = false;
    let last = "";
    for (;;) {
      rec = (await server.api("GET", `/v1/recordings/${id}`)).json();
      const line = `    ${rec.status.padEnd(10)} captured ${rec.capturedSeconds.toFixed(1).padStart(5)} s  segments ${String(rec.segmentCount).padStart(3)}  ${(rec.bytes / 1048576).toFixed(2)} MiB`;
      if (line !== last) process.stdout.write(tty ? `\r${line}   ` : `${line}\n`);
      last = line;
      if (["completed", "failed", "aborted"].includes(rec.status)) break;
      if (rec.status === "recording") recordingSince ??= Date.now();
      if (!stopSent && recordingSince && Date.now() - recordingSince >= RECORD_SECONDS * 1000) {
        say(`${tty ? "\n" : ""}4/5 POST /v1/recordings/{id}/stop after ${RECORD_SECONDS} s …`);
        await server.api("POST", `/v1/recordings/${id}/stop`);
        stopSent = true;
      }
      if (Date.now() - t0 > 120_000) throw new Error("the recording took too long; see the server log");
      await new Promise((r) => setTimeout(r, 250));
    }
    if (tty) say("");
    if (rec.status !== "completed") {
      say(`recording ended ${rec.status}: ${rec.error?.code}: ${rec.error?.message}`);
      return 1;
    }
    const file = join(dataDir, "recordings", id, rec.file.name);
    say("5/5 done.\n");
    say(`file:     ${file}`);
    say(`download: GET /v1/recordings/${id}/file`);
    say(`size:     ${(rec.file.bytes / 1048576).toFixed(2)} MiB, ${rec.file.durationSeconds.toFixed(2)} s`);
    say(`streams:  ${rec.file.streams.join("; ")}`);
    say("\nffprobe:");
    say(execFileSync("ffprobe", ["-v", "error", "-show_entries", "format=format_name,duration,size,bit_rate:stream=index,codec_type,codec_name,width,height,avg_frame_rate,sample_rate,channels", "-of", "compact=p=0", file], { encoding: "utf8" }).trim().split("\n").map((l) => "  " + l).join("\n"));
    say("\nwhat it contains:");
    const frame = frameRgb(file, rec.file.durationSeconds / 2);
    const levels = toneLevelsDb(audioSamples(file, 16000), 16000, meeting.publishers.map((p) => p.toneHz));
    for (const [i, p] of meeting.publishers.entries()) {
      say(`  ${p.name.padEnd(6)} picture ${(colourFraction(frame, p.rgb) * 100).toFixed(1).padStart(5)} % of the frame at ${(rec.file.durationSeconds / 2).toFixed(1)} s,  ${p.toneHz} Hz tone ${levels[i].toFixed(0)} dB above the noise floor`);
    }
    say("\ntimeline:");
    for (const e of rec.events) say(`  ${e.at}  ${(e.status ?? e.type).padEnd(14)} ${e.message ?? e.reason ?? ""}`);
    return 0;
  } finally {
    await server?.stop();
    await meeting?.stop();
  }
}

main().then((code) => process.exit(code), (err) => { process.stderr.write(`demo failed: ${(err as Error).stack ?? err}\n`); process.exit(1); });
