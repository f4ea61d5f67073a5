/**
 * A recording's capture processes, found by the environment marker every one of them carries
 * (`MEETREC_RECORDING=<id>`, src/capture/orphans.ts) — wherever they are in the process tree,
 * also once re-parented to init after a `kill -9` of the browser or the server. Chromium blanks
 * the environment block of its helper processes (zygote, renderers, GPU, utilities) when it sets
 * their titles; those are found by the recording's profile directory in their command line
 * (`--user-data-dir=…/meetrec-profile-<id>-…`). Reading other processes' `/proc/{pid}/environ`
 * needs the same user or root (the tests run as root).
 */
import { readdirSync, readFileSync } from "node:fs";
import { expect } from "vitest";
import { RECORDING_ENV, profileDirPrefix } from "../../src/capture/index.js";

/** A live capture process. */
export interface CaptureProcess {
  pid: number;
  /** `/proc/{pid}/stat` start time (clock ticks since boot): with `pid`, names the process. */
  startTicks: string;
  /** Command line, arguments joined by spaces. */
  args: string;
  /** The recording id of its marker (or of its profile directory). */
  recording: string;
}

/** Profile directory in a command line: the recording id, then meetrec's pid and the launch number. */
const PROFILE = new RegExp(`/${profileDirPrefix("([^\\s/]+)")}\\d+-\\d+(?:[\\s/]|$)`);

/** `pid` as a capture process, or undefined (no marker, gone, a zombie, a kernel thread). */
function inspect(pid: number): CaptureProcess | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return undefined; // exited, waiting to be reaped
    const prefix = `${RECORDING_ENV}=`;
    const entry = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").find((e) => e.startsWith(prefix));
    const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
    const recording = entry?.slice(prefix.length) ?? PROFILE.exec(args)?.[1];
    return recording === undefined ? undefined : { pid, startTicks: fields[19], args, recording };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** Every live process of any recording (any marker value), by pid. */
export function anyRecordingProcesses(): CaptureProcess[] {
  const out: CaptureProcess[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const p = inspect(Number(name));
    if (p) out.push(p);
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** Every live process of recording `id`. */
export function recordingProcesses(id: string): CaptureProcess[] {
  return anyRecordingProcesses().filter((p) => p.recording === id);
}

/** Which of a session's roles `procs` cover: `display` (Xvfb), `browser` (Chromium/Firefox), `encoder` (ffmpeg). */
export function captureRoles(procs: CaptureProcess[]): ("display" | "browser" | "encoder")[] {
  const roles = new Set<"display" | "browser" | "encoder">();
  for (const p of procs) {
    const exe = p.args.split(" ")[0];
    if (/(^|\/)Xvfb$/.test(exe)) roles.add("display");
    else if (/(^|\/)(chromium|chrome|firefox|firefox-esr)[^/ ]*$/.test(exe)) roles.add("browser");
    else if (/(^|\/)ffmpeg$/.test(exe)) roles.add("encoder");
  }
  return (["display", "browser", "encoder"] as const).filter((r) => roles.has(r));
}

/**
 * Asserts that recording `id` runs the capture processes of `roles` (default: display, browser
 * and encoder — a recording that is `recording`), and returns all its processes (never empty).
 */
export function expectCaptureProcesses(id: string, roles: ("display" | "browser" | "encoder")[] = ["display", "browser", "encoder"]): CaptureProcess[] {
  const procs = recordingProcesses(id);
  expect(procs.length, `capture processes of ${id}`).toBeGreaterThan(0);
  expect(captureRoles(procs), `capture processes of ${id}: ${procs.map((p) => p.args.slice(0, 80)).join(" | ")}`).toEqual(expect.arrayContaining(roles));
  return procs;
}

/**
 * Waits (polling every 100 ms, up to `timeoutMs`, default 10 000 ms) until `list()` is empty;
 * returns what is left then (empty when all ended), for `expect(…).toEqual([])`.
 */
export async function untilEmpty<T>(list: () => T[], timeoutMs = 10_000): Promise<T[]> {
  const end = Date.now() + timeoutMs;
  let left = list();
  while (left.length && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    left = list();
  }
  return left;
}

/** Waits (see {@link untilEmpty}) until recording `id` has no process left; returns the survivors. */
export function recordingProcessesGone(id: string, timeoutMs?: number): Promise<CaptureProcess[]> {
  return untilEmpty(() => recordingProcesses(id), timeoutMs);
}

/** Which of `procs` (pid and start time) still run: a recycled pid does not count. */
export function stillRunning(procs: CaptureProcess[]): CaptureProcess[] {
  return procs.filter((p) => inspect(p.pid)?.startTicks === p.startTicks);
}
