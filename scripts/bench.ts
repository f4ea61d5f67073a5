/**
 * `make bench`: measures the recording pipeline on this machine and prints a Markdown report
 * (copy it into docs/benchmarks.md with the machine and the command).
 *
 * - CPU seconds per recorded second of the whole session (Xvfb + every browser process +
 *   ffmpeg), for a 2-publisher Janus meeting at 1280×720@30, 1920×1080@30 and audio-only,
 *   and the session's peak memory (sum of PSS, /proc/PID/smaps_rollup).
 * - Start latency: POST /v1/recordings → first media segment durable (median of 5).
 * - Encoder-only CPU of meetrec's ffmpeg next to an ffmpeg with Nextcloud's recorder settings
 *   (VP8 realtime, -crf 10 -b:v 1M, Opus, WebM) grabbing the same 1920×1080 display and sink.
 * - A/V offset of the capture chain itself (no browser): a white X root window and a beep into
 *   the sink at the same instant, measured in the encoder's output.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Encoder, PulseServer, XvfbDisplay } from "../src/capture/index.js";
import { startMeeting, type Meeting } from "../test/fixtures/meeting.js";
import { avOffsets } from "../test/helpers/media-check.js";
import { startServer, type TestServer } from "../test/helpers/server.js";

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** All descendants of the given pids (and themselves). */
function tree(roots: number[]): number[] {
  const rows = execFileSync("ps", ["-eo", "pid=,ppid="], { encoding: "utf8" }).trim().split("\n").map((l) => l.trim().split(/\s+/).map(Number));
  const out = new Set(roots.filter((p) => rows.some((r) => r[0] === p)));
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of rows) if (out.has(ppid) && !out.has(pid)) { out.add(pid); grew = true; }
  }
  return [...out];
}

/** utime + stime of `pid`, s (0 when gone). */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch { return 0; }
}

function pssBytes(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch { return 0; }
}

/** Samples a set of process trees: CPU over the window and peak PSS. */
async function measure(roots: () => number[], windowMs: number): Promise<{ cpuPerSecond: number; peakPssMiB: number }> {
  const seen = new Map<number, number>();
  const start = new Map<number, number>();
  for (const p of tree(roots())) start.set(p, cpuSeconds(p));
  const t0 = Date.now();
  let peak = 0;
  while (Date.now() - t0 < windowMs) {
    const pids = tree(roots());
    for (const p of pids) { if (!start.has(p)) start.set(p, 0); seen.set(p, cpuSeconds(p)); }
    peak = Math.max(peak, pids.reduce((s, p) => s + pssBytes(p), 0));
    await sleep(500);
  }
  const wall = (Date.now() - t0) / 1000;
  let cpu = 0;
  for (const [p, end] of seen) cpu += end - (start.get(p) ?? 0);
  return { cpuPerSecond: cpu / wall, peakPssMiB: peak / 1048576 };
}

async function sessionPids(server: TestServer, id: string): Promise<number[]> {
  const rec = await server.waitFor(id, (r) => r.status === "recording" || ["failed", "aborted", "completed"].includes(r.status), 60_000);
  if (rec.status !== "recording") throw new Error(`recording ${id} ended ${rec.status}: ${JSON.stringify(rec.error)}`);
  const pids = rec.events.find((e: any) => e.status === "recording").data.pids;
  return [pids.display, pids.browser, pids.encoder].filter(Boolean);
}

async function pipelineRow(server: TestServer, meeting: Meeting, name: string, body: Record<string, unknown>, seconds = 30) {
  const id = (await server.api("POST", "/v1/recordings", { url: meeting.viewerUrl, join: meeting.joinSteps(), ...body })).json().id;
  const pids = await sessionPids(server, id);
  await sleep(4000); // let the page settle
  const m = await measure(() => pids, seconds * 1000);
  await server.api("POST", `/v1/recordings/${id}/stop`);
  const rec = await server.waitFor(id, (r) => ["completed", "failed", "aborted"].includes(r.status));
  return { name, ...m, status: rec.status, bytesPerSecond: rec.file ? rec.file.bytes / rec.file.durationSeconds : 0 };
}

async function startLatency(server: TestServer, meeting: Meeting, runs = 5): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = Date.now();
    // Join steps that do not wait for the demo's once-a-second resolution poll: the figure stays meetrec's own.
    const id = (await server.api("POST", "/v1/recordings", { url: meeting.viewerUrl, join: meeting.joinSteps("recorder", { untilFrames: false }), video: { width: 1280, height: 720, fps: 30 } })).json().id;
    await server.waitFor(id, (r) => r.segmentCount >= 1 || ["failed", "aborted"].includes(r.status), 60_000);
    out.push((Date.now() - t0) / 1000);
    await server.api("POST", `/v1/recordings/${id}/stop`);
    await server.waitFor(id, (r) => ["completed", "failed", "aborted"].includes(r.status));
  }
  return out;
}

/** meetrec's encoder and a Nextcloud-settings encoder on the same 1080p session, each measured alone. */
async function encoderRows(server: TestServer, meeting: Meeting, seconds = 30) {
  const id = (await server.api("POST", "/v1/recordings", { url: meeting.viewerUrl, join: meeting.joinSteps(), video: { width: 1920, height: 1080, fps: 30, bitrateKbps: 2500 } })).json().id;
  const [, , encoder] = await sessionPids(server, id);
  const env = readFileSync(`/proc/${encoder}/environ`, "utf8").split("\0").filter(Boolean);
  const get = (k: string) => env.find((e) => e.startsWith(`${k}=`))!.slice(k.length + 1);
  const args = readFileSync(`/proc/${encoder}/cmdline`, "utf8").split("\0");
  const grab = args[args.indexOf("-i", args.indexOf("x11grab")) + 1];
  const monitor = args[args.lastIndexOf("-i") + 1];
  const dir = mkdtempSync(join(tmpdir(), "meetrec-bench-nc-"));
  const ncArgs = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y",
    "-thread_queue_size", "512", "-f", "x11grab", "-draw_mouse", "0", "-framerate", "30", "-video_size", "1920x1080", "-i", grab,
    "-thread_queue_size", "512", "-f", "pulse", "-i", monitor,
    "-c:v", "libvpx", "-quality:v", "realtime", "-crf", "10", "-b:v", "1M", "-c:a", "libopus", join(dir, "nextcloud.webm")];
  const nc = spawn("ffmpeg", ncArgs, { env: { ...process.env, DISPLAY: get("DISPLAY"), PULSE_SERVER: get("PULSE_SERVER") }, stdio: "ignore" });
  await sleep(4000);
  const both = await Promise.all([measure(() => [encoder], seconds * 1000), measure(() => [nc.pid!], seconds * 1000)]);
  nc.kill("SIGINT");
  await new Promise((r) => nc.once("exit", r));
  await server.api("POST", `/v1/recordings/${id}/stop`);
  const rec = await server.waitFor(id, (r) => ["completed", "failed", "aborted"].includes(r.status));
  const ncBytes = readFileSync(join(dir, "nextcloud.webm")).length;
  const ncDur = Number(execFileSync("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", join(dir, "nextcloud.webm")], { encoding: "utf8" }));
  rmSync(dir, { recursive: true, force: true });
  return {
    meetrec: { ...both[0], bytesPerSecond: rec.file ? rec.file.bytes / rec.file.durationSeconds : 0 },
    nextcloud: { ...both[1], bytesPerSecond: ncBytes / ncDur },
    ncArgs: ncArgs.map((a) => (a === grab ? ":N.0+0,0" : a === monitor ? "SINK.monitor" : a.startsWith("/") ? "out.webm" : a)).join(" "),
  };
}

/** A/V offset of display grab + sink monitor capture with no browser: xsetroot + pacat. */
async function avRig(runs = 3): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), "meetrec-bench-av-"));
  const pulse = await PulseServer.ensure(join(dir, "pulse"));
  const sink = await pulse.createSink("meetrec_bench_av");
  const display = await XvfbDisplay.start({ width: 640, height: 360 });
  const beep = join(dir, "beep.raw");
  execFileSync("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "sine=f=3000:d=0.15:sample_rate=48000", "-ac", "2", "-f", "s16le", beep]);
  const env = { ...process.env, DISPLAY: display.name, PULSE_SERVER: pulse.server };
  const all: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      const out = join(dir, `r${run}`);
      execFileSync("mkdir", ["-p", out]);
      execFileSync("xsetroot", ["-solid", "#2060c0"], { env });
      const enc = new Encoder({ mode: "video", display: display.name, width: 640, height: 360, fps: 30, bitrateKbps: 1000, audioBitrateKbps: 128, audioDelayMs: 70,
        monitor: sink.monitor, pulseServer: pulse.server, segmentSeconds: 2, x264Preset: "veryfast", dir: out });
      const files: string[] = [];
      enc.on("init", (p: string) => files.unshift(p));
      enc.on("segment", (s: { path: string }) => files.push(s.path));
      for (const at of [2000, 4000, 6000]) {
        setTimeout(() => {
          spawn("pacat", ["--raw", "--format=s16le", "--rate=48000", "--channels=2", "--latency-msec=10", "-d", sink.name, beep], { env });
          execFileSync("xsetroot", ["-solid", "white"], { env });
          setTimeout(() => execFileSync("xsetroot", ["-solid", "#2060c0"], { env }), 150);
        }, at);
      }
      await sleep(7500);
      await enc.stop();
      const all1 = join(out, "all.mp4");
      writeFileSync(all1, Buffer.concat(files.map((f) => readFileSync(f))));
      all.push(...avOffsets(all1, 3000));
    }
  } finally {
    await display.close();
    await sink.close();
    await pulse.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return all;
}

function machine(): string {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
  const mem = Math.round(Number(/MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))![1]) / 1048576);
  const v = (cmd: string, args: string[]) => { try { return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split("\n")[0]; } catch { return "?"; } };
  return [`- CPU: ${cpu}, ${readdirSync("/sys/devices/system/cpu").filter((d) => /^cpu\d+$/.test(d)).length} cores; ${mem} GiB memory; kernel ${v("uname", ["-r"])}`,
    `- ${v("chromium", ["--version"])}; ${v("firefox-esr", ["--version"])}; ${v("ffmpeg", ["-version"])}`,
    `- Node ${process.version}`].join("\n");
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error("make bench needs root (network namespace for the Janus meeting)");
  const report: string[] = [];
  const p = (s: string) => { report.push(s); process.stderr.write(s + "\n"); };
  p(`### Run of ${new Date().toISOString().slice(0, 10)}\n\nMachine:\n${machine()}\n`);
  p("A/V offset of the capture chain (no browser; sound minus picture, ms; audioDelayMs = 70):");
  const av = await avRig();
  p(`- ${av.map((x) => Math.round(x * 1000)).join(", ")} (median ${Math.round(median(av) * 1000)} ms)\n`);

  const meeting = await startMeeting();
  const server = await startServer({ netns: meeting.netns, egress: meeting.egress, env: { MEETREC_LOG_LEVEL: "warn", MEETREC_CONCURRENCY: "1" } });
  try {
    const rows = [
      await pipelineRow(server, meeting, "video 1280×720@30 (default, x264 veryfast 2.5 Mbit/s)", { video: { width: 1280, height: 720, fps: 30 } }),
      await pipelineRow(server, meeting, "video 1920×1080@30 (x264 veryfast 2.5 Mbit/s)", { video: { width: 1920, height: 1080, fps: 30 } }),
      await pipelineRow(server, meeting, "audio only (AAC 128 kbit/s)", { mode: "audio" }),
    ];
    p("Whole recording session (Xvfb + browser processes + ffmpeg), 2-publisher Janus meeting, Chromium, 30 s window:\n");
    p("| recording | CPU s per recorded s | peak memory (PSS) | file bytes per s | status |\n|---|---|---|---|---|");
    for (const r of rows) p(`| ${r.name} | ${r.cpuPerSecond.toFixed(2)} | ${r.peakPssMiB.toFixed(0)} MiB | ${(r.bytesPerSecond / 1024).toFixed(0)} KiB | ${r.status} |`);
    const enc = await encoderRows(server, meeting);
    p("\nEncoder only, same 1920×1080@30 display and sink at the same time (30 s window):\n");
    p("| encoder | CPU s per recorded s | peak memory (PSS) | file bytes per s |\n|---|---|---|---|");
    p(`| meetrec: H.264 x264 veryfast 2.5 Mbit/s + AAC, fMP4 segments | ${enc.meetrec.cpuPerSecond.toFixed(2)} | ${enc.meetrec.peakPssMiB.toFixed(0)} MiB | ${(enc.meetrec.bytesPerSecond / 1024).toFixed(0)} KiB |`);
    p(`| Nextcloud recorder settings: VP8 realtime -crf 10 -b:v 1M + Opus, WebM | ${enc.nextcloud.cpuPerSecond.toFixed(2)} | ${enc.nextcloud.peakPssMiB.toFixed(0)} MiB | ${(enc.nextcloud.bytesPerSecond / 1024).toFixed(0)} KiB |`);
    p(`\nReference command: \`ffmpeg ${enc.ncArgs}\`\n`);
    const lat = await startLatency(server, meeting);
    p(`Start latency, POST /v1/recordings → first segment durable (1280×720, join steps included): median ${median(lat).toFixed(2)} s (runs: ${lat.map((x) => x.toFixed(2)).join(", ")})\n`);
  } finally {
    await server.stop();
    await meeting.stop();
  }
  process.stdout.write(report.join("\n") + "\n");
}

main().then(() => process.exit(0), (err) => { process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`); process.exit(1); });
