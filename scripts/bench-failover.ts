/**
 * `make bench-failover` (also part of `make bench`): failover of a live recording when the worker
 * holding it dies with everything it runs (SIGKILL of the worker and its Xvfb, browser and
 * encoder — a machine gone). A cluster on loopback (Redis, PostgreSQL, s3rver, one API, three
 * workers; default lock 4 s, stalled check 2 s) records the local sync test page (640×360@15,
 * 2 s segments); each round kills the holder once the recording has 4 segments, stops the
 * recording once the new holder has stored 3 more, and measures, in s:
 *
 * - take-over: kill → the other worker's `taken_over` event (detection + claim);
 * - media gap: the `gapMs` of period 2 (end of the last stored segment → the new encoder);
 * - media lost: the capture window minus the final file's duration. The capture window runs
 *   from the first encoder's start (the recording's `period_started` event of period 1: media
 *   time 0 of the file, its first frame follows within ~0.1 s) to the stop reaching the holder
 *   (the `stopping` transition, after which its encoder grabs nothing more) — the most the file
 *   could hold. Both instants are on this machine's clock, which the script shares.
 *
 * Each final file is checked for content (video + audio streams, the page's colour near its
 * start and end, the page's 500 Hz tone); a round whose file fails ends the run. Prints the
 * machine and versions, a Markdown table and the medians. `--kills N` (default 5).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSyncPage } from "../dev/sync-page.js";
import { startCluster } from "../dev/cluster.js";
import { API_KEY } from "../dev/server.js";
import { audioSamples, pageFraction, toneLevelsDb } from "../dev/media-check.js";

const kills = Number(process.argv[process.argv.indexOf("--kills") + 1]) || 5;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const TERMINAL = ["completed", "failed", "aborted"];
/** The sync page's default background and tone (dev/sync-page.ts). */
const BG: [number, number, number] = [0x20, 0x60, 0xc0];
const TONE_HZ = 500;

const v = (cmd: string, args: string[]) => { try { return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split("\n")[0].trim(); } catch { return "?"; } };

/** Streams, the page's colour at 2 s and 1.5 s before the end, its tone; throws when one is missing. */
function checkFile(file: string): string {
  const probe = JSON.parse(execFileSync("ffprobe", ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", file], { encoding: "utf8" }));
  const types = probe.streams.map((s: { codec_type: string; codec_name: string }) => `${s.codec_type}:${s.codec_name}`);
  const duration = Number(probe.format.duration);
  if (!types.some((t: string) => t.startsWith("video")) || !types.some((t: string) => t.startsWith("audio"))) throw new Error(`streams ${types.join(", ")}`);
  const colours = [2, duration - 1.5].map((t) => pageFraction(file, t, BG));
  const tone = toneLevelsDb(audioSamples(file, 16000), 16000, [TONE_HZ])[0];
  if (colours.some((c) => c <= 0.5) || !(tone > 20)) throw new Error(`page colour ${colours.map((c) => c.toFixed(2)).join("/")}, tone ${tone.toFixed(0)} dB`);
  return `${types.join("+")}, colour ${colours.map((c) => c.toFixed(2)).join("/")}, tone ${tone.toFixed(0)} dB`;
}

const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
const cores = readdirSync("/sys/devices/system/cpu").filter((d) => /^cpu\d+$/.test(d)).length;
console.log(`Failover run of ${new Date().toISOString().slice(0, 10)}: \`node --import tsx scripts/bench-failover.ts --kills ${kills}\`\n`);
console.log(`- CPU: ${cpu}, ${cores} cores; kernel ${v("uname", ["-r"])}; Node ${process.version}`);
console.log(`- Debian packages: ${v("dpkg-query", ["-W", "-f", "${Package} ${Version}, ", "redis-server", "postgresql", "chromium", "ffmpeg"]).replace(/,$/, "")}\n`);

const page = await startSyncPage();
// The backend may only open the page's origin (the egress policy refuses loopback otherwise).
const cluster = await startCluster(["w1", "w2", "w3"], { backends: { default: { apiKey: API_KEY, allowedOrigins: [page.origin] } } });
const dir = mkdtempSync(join(tmpdir(), "meetrec-bench-failover-"));
const rows: { takeover: number; gap: number; lost: number; file: number; window: number; check: string }[] = [];
try {
  const { api } = cluster;
  for (let i = 0; i < kills; i++) {
    const created = await api.api("POST", "/v1/recordings", { url: page.url, video: { width: 640, height: 360, fps: 15 }, maxDurationSeconds: 600 });
    if (created.status !== 201) throw new Error(`round ${i + 1}: POST /v1/recordings ${created.status}: ${created.body}`);
    const { id } = created.json();
    const live = await api.waitFor(id, (x) => x.segmentCount >= 4 || TERMINAL.includes(x.status), 60_000);
    const holder = cluster.holderOf(live);
    const killedAt = Date.now();
    await cluster.killMachine(holder);
    const taken = await api.waitFor(id, (x) => x.events.some((e: any) => e.type === "taken_over"), 60_000);
    const takeover = (Date.parse(taken.events.find((e: any) => e.type === "taken_over").at) - killedAt) / 1000;
    await api.waitFor(id, (x) => x.periods === 2 && x.segmentCount >= live.segmentCount + 3, 60_000);
    await api.api("POST", `/v1/recordings/${id}/stop`);
    const rec = await api.waitFor(id, (x) => TERMINAL.includes(x.status), 120_000);
    if (rec.status !== "completed") throw new Error(`round ${i + 1}: ${rec.status} ${JSON.stringify(rec.error)}`);
    const event = (f: (e: any) => boolean, what: string) => {
      const e = rec.events.find(f);
      if (!e) throw new Error(`round ${i + 1}: no ${what} event`);
      return e;
    };
    const gap = event((e) => e.type === "period_started" && e.data.period === 2, "period 2").data.gapMs / 1000;
    const from = Date.parse(event((e) => e.type === "period_started" && e.data.period === 1, "period 1").at);
    const to = Date.parse(event((e) => e.status === "stopping", "stopping").at);
    const r = await api.api("GET", `/v1/recordings/${id}/file`);
    if (r.status !== 200) throw new Error(`round ${i + 1}: GET file ${r.status}`);
    const file = join(dir, `${id}.mp4`);
    writeFileSync(file, r.body);
    let check: string;
    try { check = checkFile(file); } catch (err) { throw new Error(`round ${i + 1}: file check failed: ${(err as Error).message}`); }
    const window = (to - from) / 1000;
    rows.push({ takeover, gap, lost: window - rec.file.durationSeconds, file: rec.file.durationSeconds, window, check });
    process.stderr.write(`kill ${i + 1}/${kills}: take-over ${takeover.toFixed(1)} s, media gap ${gap.toFixed(1)} s, lost ${(window - rec.file.durationSeconds).toFixed(1)} s\n`);
    await cluster.startWorker(`w${4 + i}`);
  }
} finally {
  await cluster.stop();
  await page.close();
  rmSync(dir, { recursive: true, force: true });
}
const f = (x: number) => x.toFixed(1);
console.log("| kill | take-over (s) | media gap (s) | media lost = capture window − file (s) | file / capture window (s) | file check |");
console.log("|---|---|---|---|---|---|");
rows.forEach((r, i) => console.log(`| ${i + 1} | ${f(r.takeover)} | ${f(r.gap)} | ${f(r.lost)} | ${f(r.file)} / ${f(r.window)} | ${r.check} |`));
console.log(`| **median** | **${f(median(rows.map((r) => r.takeover)))}** | **${f(median(rows.map((r) => r.gap)))}** | **${f(median(rows.map((r) => r.lost)))}** | | |`);
console.log("\nCapture window: from the first encoder's start (`period_started`, period 1) to the stop reaching the holder (`stopping` transition).");
