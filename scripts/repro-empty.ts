export {};
import { spawn, execFileSync } from "node:child_process";
import { startSyncPage } from "../test/fixtures/sync-page.js";
const page = await startSyncPage();
const hogs = Array.from({ length: Number(process.env.HOGS ?? 4) }, () => spawn("sh", ["-c", "while :; do :; done"], { stdio: "ignore" }));
const results: unknown[] = [];
for (let i = 0; i < Number(process.argv[2] ?? 4); i++) {
  const r = await new Promise<string>((resolve) => {
    const c = spawn(process.execPath, ["--import", "tsx", "/work/main/src/cli/main.ts", "record", page.url, "--duration", process.env.DUR ?? "4", "--json", "--width", process.env.W ?? "640", "--height", process.env.H ?? "360", "--fps", "30"], { cwd: "/work/main", env: { ...process.env, MEETREC_CAPTURE__PULSE_DIR: "/tmp/repro/pulse" } });
    let out = ""; c.stdout.on("data", (d) => (out += d)); c.stderr.on("data", () => {});
    c.on("exit", () => resolve(out));
  });
  try { const j = JSON.parse(r); results.push({ status: j.status, dur: j.durationSeconds, streams: j.streams, segs: j.segmentCount, end: j.endReason, kept: j.keptDataDir, err: j.error }); } catch { results.push(r.slice(0, 300)); }
  console.log(JSON.stringify(results[results.length - 1]));
}
for (const h of hogs) h.kill("SIGKILL");
await page.close?.();
process.exit(0);
