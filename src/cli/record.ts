/**
 * `meetrec record <url>`: one recording on this machine, no server. Works in a private data
 * directory; the finished file is moved to `--out`. On failure the segments are kept and
 * their place is printed.
 */
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { EmbeddedHost } from "../hosts/index.js";
import { RecordingRequest } from "../recordings/index.js";
import { stepOrigins } from "../capture/index.js";
import { loadConfig, parseConfig } from "../config/index.js";
import { TERMINAL, type Recording } from "../store/index.js";
import { MeetrecError } from "../util/errors.js";
import { createLogger } from "../util/log.js";

export interface RecordOptions {
  config?: string;
  join?: string;
  duration?: string;
  out?: string;
  browser?: string;
  audioOnly?: boolean;
  width?: string;
  height?: string;
  fps?: string;
  /** `media` (the configured default) or `joined`: see the config's `startWhen`. */
  startWhen?: string;
  json?: boolean;
}

const fmtTime = (s: number) => `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
const fmtBytes = (b: number) => (b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : `${(b / 1024).toFixed(0)} KiB`);

/** The summary printed at the end (`--json` prints it as JSON on stdout). */
export interface RecordSummary {
  id: string;
  status: Recording["status"];
  endReason: Recording["endReason"];
  error: Recording["error"];
  file: string | null;
  bytes: number | null;
  durationSeconds: number | null;
  streams: string[];
  segments: number;
  periods: number;
  keptDataDir?: string;
}

/**
 * Records `url` until `--duration` seconds have passed or SIGINT; returns the exit code
 * (0 completed, 1 otherwise). @throws MeetrecError for bad arguments (nothing is started).
 */
export async function record(url: string, o: RecordOptions): Promise<number> {
  const base = loadConfig(o.config);
  const dataDir = mkdtempSync(join(tmpdir(), "meetrec-record-"));
  const num = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new MeetrecError("bad_request", `--${name} must be a number, got "${v}"`);
    return n;
  };
  let join_: unknown;
  if (o.join) {
    try {
      join_ = JSON.parse(readFileSync(o.join, "utf8"));
    } catch (err) {
      throw new MeetrecError("bad_request", `--join ${o.join}: cannot read JSON steps: ${(err as Error).message}`);
    }
  }
  // Only the sizes given: an undefined key would hide the configured default when merged.
  const video = Object.fromEntries(Object.entries({ width: num(o.width, "width"), height: num(o.height, "height"), fps: num(o.fps, "fps") }).filter(([, v]) => v !== undefined));
  const parsed = RecordingRequest.safeParse({
    url, join: join_, mode: o.audioOnly ? "audio" : undefined, browser: o.browser,
    video: Object.keys(video).length > 0 ? video : undefined,
    maxDurationSeconds: num(o.duration, "duration"), startWhen: o.startWhen,
  });
  if (!parsed.success) {
    throw new MeetrecError("validation_failed", parsed.error.issues.map((i) => `${i.path.join(".") || "argument"}: ${i.message}`).join("; "));
  }
  // The operator typed the URL (and the join steps): their origins are named, so a page on this
  // machine or the local network can be recorded; what the page loads is held to the egress policy.
  const named = [...new Set([parsed.data.url, ...stepOrigins(parsed.data.join ?? [])].map((u) => new URL(u).origin))];
  const config = parseConfig({ ...base, dataDir, concurrency: 1, backends: { cli: { apiKey: "cli-local-only-not-served", allowedOrigins: named } } });
  const log = createLogger(process.env.MEETREC_LOG_LEVEL ?? (o.json ? "warn" : config.logLevel === "info" ? "warn" : config.logLevel));
  const app = await EmbeddedHost.start(config, log, { command: "record" });
  let rec = await app.recordings.create("cli", parsed.data);
  const onSignal = () => { void app.recordings.stop(rec.id); };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // SIGUSR1 pauses capturing, SIGUSR2 captures again (the API's /pause and /resume).
  const pauseOn = (paused: boolean) => () => { void app.recordings.setPaused(rec.id, paused).catch((err: unknown) => process.stderr.write(`${(err as Error).message}\n`)); };
  const onUsr1 = pauseOn(true), onUsr2 = pauseOn(false);
  process.on("SIGUSR1", onUsr1);
  process.on("SIGUSR2", onUsr2);
  const tty = process.stderr.isTTY && !o.json;
  const t0 = Date.now();
  while (!TERMINAL.includes(rec.status)) {
    await new Promise((r) => setTimeout(r, tty ? 500 : 1000));
    rec = await app.recordings.get(rec.id);
    const line = `${(rec.status === "recording" && rec.paused ? "paused" : rec.status).padEnd(10)} elapsed ${fmtTime((Date.now() - t0) / 1000)}  captured ${fmtTime(rec.capturedMs / 1000)}  segments ${rec.segmentCount}  ${fmtBytes(rec.bytes)}`;
    if (tty) process.stderr.write(`\r\x1b[2K${line}`);
    else if (!o.json) process.stderr.write(line + "\n");
  }
  if (tty) process.stderr.write("\n");
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  process.off("SIGUSR1", onUsr1);
  process.off("SIGUSR2", onUsr2);
  let out: string | null = null;
  if (rec.file) {
    out = resolve(o.out ?? rec.file.name);
    const src = app.files.filePath(rec);
    try {
      renameSync(src, out);
    } catch {
      copyFileSync(src, out);
    }
  }
  await app.close();
  const summary: RecordSummary = {
    id: rec.id, status: rec.status, endReason: rec.endReason, error: rec.error, file: out,
    bytes: rec.file?.bytes ?? null, durationSeconds: rec.file?.durationSeconds ?? null, streams: rec.file?.streams ?? [],
    segments: rec.segmentCount, periods: rec.periodCount,
  };
  if (rec.status === "completed") rmSync(dataDir, { recursive: true, force: true });
  else summary.keptDataDir = dataDir;
  if (o.json) {
    process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
  } else {
    process.stderr.write(rec.status === "completed"
      ? `recorded ${summary.durationSeconds} s to ${out} (${fmtBytes(summary.bytes ?? 0)}; ${summary.streams.join(", ")})\n`
      : `recording ${rec.status}: ${rec.error?.code ?? rec.endReason}: ${rec.error?.message ?? ""}${out ? `\npartial file: ${out}` : ""}\nsegments and log kept in ${dataDir}\n`);
  }
  return rec.status === "completed" ? 0 : 1;
}
