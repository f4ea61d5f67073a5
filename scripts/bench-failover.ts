/**
 * `make bench-failover` (also part of `make bench`): failover of a live recording when the worker
 * holding it dies with everything it runs (SIGKILL of the worker and its Xvfb, browser and
 * encoder — a machine gone). A cluster on loopback (Redis, PostgreSQL, s3rver, one API, three
 * workers; default lock 4 s, stalled check 2 s) records a local test page; each round kills
 * the holder and measures:
 *
 * - take-over: kill → the other worker's `taken_over` event (detection + claim), s;
 * - media gap: the `gapMs` of period 2 (end of the last stored segment → the new encoder), s;
 * - media lost: wall-clock capture time − the final file's duration, s.
 *
 * Prints a Markdown table and the medians. `--kills N` (default 5).
 */
import { startSyncPage } from "../test/fixtures/sync-page.js";
import { startCluster } from "../test/helpers/cluster.js";

const kills = Number(process.argv[process.argv.indexOf("--kills") + 1]) || 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const TERMINAL = ["completed", "failed", "aborted"];

const page = await startSyncPage();
const cluster = await startCluster(["w1", "w2", "w3"]);
const rows: { takeover: number; gap: number; lost: number; file: number; wall: number }[] = [];
try {
  const { api } = cluster;
  for (let i = 0; i < kills; i++) {
    const { id } = (await api.api("POST", "/v1/recordings", { url: page.url, video: { width: 640, height: 360, fps: 15 }, maxDurationSeconds: 600 })).json();
    const live = await api.waitFor(id, (x) => x.segmentCount >= 4 || TERMINAL.includes(x.status), 60_000);
    const from = Date.parse(live.events.find((e: any) => e.status === "recording").at);
    const holder = cluster.holderOf(live);
    const killedAt = Date.now();
    await cluster.killMachine(holder);
    const taken = await api.waitFor(id, (x) => x.events.some((e: any) => e.type === "taken_over"), 60_000);
    const takeover = (Date.parse(taken.events.find((e: any) => e.type === "taken_over").at) - killedAt) / 1000;
    await api.waitFor(id, (x) => x.periods === 2 && x.segmentCount >= live.segmentCount + 3, 60_000);
    const stopAt = Date.now();
    await api.api("POST", `/v1/recordings/${id}/stop`);
    const rec = await api.waitFor(id, (x) => TERMINAL.includes(x.status), 120_000);
    if (rec.status !== "completed") throw new Error(`round ${i + 1}: ${rec.status} ${JSON.stringify(rec.error)}`);
    const gap = rec.events.find((e: any) => e.type === "period_started" && e.data.period === 2).data.gapMs / 1000;
    const wall = (stopAt - from) / 1000;
    rows.push({ takeover, gap, lost: wall - rec.file.durationSeconds, file: rec.file.durationSeconds, wall });
    process.stderr.write(`kill ${i + 1}/${kills}: take-over ${takeover.toFixed(1)} s, media gap ${gap.toFixed(1)} s\n`);
    await cluster.startWorker(`w${4 + i}`);
  }
} finally {
  await cluster.stop();
  await page.close();
}
const f = (x: number) => x.toFixed(1);
console.log("| kill | take-over (s) | media gap (s) | media lost (s) | file / wall (s) |");
console.log("|---|---|---|---|---|");
rows.forEach((r, i) => console.log(`| ${i + 1} | ${f(r.takeover)} | ${f(r.gap)} | ${f(r.lost)} | ${f(r.file)} / ${f(r.wall)} |`));
console.log(`| **median** | **${f(median(rows.map((r) => r.takeover)))}** | **${f(median(rows.map((r) => r.gap)))}** | **${f(median(rows.map((r) => r.lost)))}** | |`);
