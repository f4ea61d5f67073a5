/**
 * The process registry of a capture session, `{workDir}/pids.json`: which display, sink pin,
 * browser and encoder processes the session runs, and which meetrec process owns them. If
 * meetrec is killed (-9, OOM) these processes outlive it; the next start reads the registry and
 * kills exactly them before it resumes the recording, so an old encoder never writes into a
 * resumed recording's directory.
 *
 * A process is identified by pid *and* its start time (`/proc/{pid}/stat` field 22, clock
 * ticks since boot), so a recycled pid is never killed by mistake. A registry whose owner is
 * still alive (another meetrec on this machine sharing a media root) is left alone.
 */
import { readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { PROCESS_REGISTRY } from "../media/index.js";
import { procStat } from "../util/process.js";

/** One registered process. */
export interface RegisteredProcess {
  role: string;
  pid: number;
  /** `/proc/{pid}/stat` start time (clock ticks since boot). */
  startTicks: string;
  /** The process leads its own process group (puppeteer's browsers): the group is killed. */
  group: boolean;
}


/**
 * Name of the environment variable every process of a recording's capture session carries,
 * set to the recording id: Xvfb, the browser and ffmpeg, and what they start, which inherit
 * it — also once re-parented to init after a `kill -9`. The entry `MEETREC_RECORDING=<id>` in
 * `/proc/{pid}/environ` finds them (README, "How a recording is made safe"), except Chromium's
 * helper processes (zygote, renderers, GPU, utilities): they have it too, but Chromium blanks
 * that memory when it sets their process title; their command line names the recording's
 * profile directory instead ({@link profileDirPrefix}). The shared PulseAudio daemon is per
 * machine and carries no marker.
 */
export const RECORDING_ENV = "MEETREC_RECORDING";

/** The environment marker of recording `id` (`{ MEETREC_RECORDING: id }`), see {@link RECORDING_ENV}. */
export function recordingEnv(id: string): Record<string, string> {
  return { [RECORDING_ENV]: id };
}

/**
 * The start of the name of recording `id`'s browser profile directories
 * (`meetrec-profile-{id}-{meetrec pid}-{launch}`, in the system's temporary directory). Every
 * Chromium process of the recording has it in its command line (`--user-data-dir=`).
 */
export function profileDirPrefix(id: string): string {
  return `meetrec-profile-${id}-`;
}

/** This meetrec's profile directory name for recording `id`'s browser launch `launch` (0, 1, …), see {@link profileDirPrefix}. */
export function profileDirName(id: string, launch: number): string {
  return `${profileDirPrefix(id)}${process.pid}-${launch}`;
}

/** A name made by {@link profileDirName}, its meetrec pid captured. */
const PROFILE_DIR_NAME = new RegExp(`^${profileDirPrefix(".+")}(\\d+)-\\d+$`);

/**
 * Removes the browser profile directories in `dir` (default: the system's temporary directory)
 * whose meetrec process is gone. They are named `meetrec-profile-{id}-{meetrec pid}-{launch}`
 * ({@link profileDirPrefix}); a directory counts as left over when that pid no longer runs, or
 * runs a process started after the directory was made (the pid was recycled). A meetrec that is
 * killed (-9, OOM) cannot remove its own, and each holds megabytes. Call after the leftover
 * processes were killed; a process still running on such a profile (one no registry knew) is
 * killed before its directory goes. Returns the names removed; never throws.
 */
export function removeLeftoverProfiles(dir: string = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  let bootMs: number;
  try {
    names = readdirSync(dir);
    bootMs = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1]) * 1000;
  } catch {
    return removed;
  }
  if (!Number.isFinite(bootMs)) return removed; // no boot time: no owner's start can be told
  const leftover: string[] = [];
  for (const name of names) {
    const m = PROFILE_DIR_NAME.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    const path = join(dir, name);
    try {
      const st = statSync(path);
      const madeAt = st.birthtimeMs > 0 ? st.birthtimeMs : st.mtimeMs;
      // When its owner started: boot time + its start in clock ticks (100 Hz); btime is whole seconds.
      const owner = procStat(pid);
      if (owner && bootMs + Number(owner.startTicks) * 10 <= madeAt + 1000) continue; // its meetrec still runs
      leftover.push(name);
    } catch { /* gone meanwhile */ }
  }
  if (leftover.length) killUsersOf(leftover.map((name) => join(dir, name)));
  for (const name of leftover) {
    try {
      removeProfile(join(dir, name), dir);
      removed.push(name);
    } catch { /* not ours to remove */ }
  }
  return removed;
}

/**
 * Removes a browser profile directory and, for Chromium, the directory of its singleton socket:
 * Chromium makes `{tmpdir}/org.chromium.Chromium.XXXXXX/` for it, links it from the profile
 * (`SingletonSocket`) and removes it only on a clean exit — every browser meetrec kills (a hung
 * page, a close past its time, a killed meetrec) left one behind (measured: ~40 an hour in the
 * test runs). Only a target of that name directly under the system's temporary directory is
 * removed. Never throws for a missing directory.
 * @throws Error (fs) when a directory exists but cannot be removed.
 */
export function removeProfile(profileDir: string, tmp: string = tmpdir()): void {
  let socketDir: string | undefined;
  try {
    const d = dirname(readlinkSync(join(profileDir, "SingletonSocket")));
    if (dirname(d) === tmp && /^org\.chromium\.Chromium\.[A-Za-z0-9]+$/.test(basename(d))) socketDir = d;
  } catch { /* no link: Firefox, or Chromium never got that far */ }
  if (socketDir) rmSync(socketDir, { recursive: true, force: true });
  rmSync(profileDir, { recursive: true, force: true });
}

/**
 * Kills (SIGKILL) every process whose command line names one of `paths` (one pass over `/proc`):
 * a browser still running on a left-over profile that no registry knew (the Firefox profile
 * template's build, capture/browser.ts).
 */
function killUsersOf(paths: string[]): void {
  let pids: string[];
  try { pids = readdirSync("/proc").filter((n) => /^\d+$/.test(n)); } catch { return; }
  const names = (arg: string) => paths.some((path) => arg === path || arg.startsWith(`${path}/`));
  for (const pid of pids) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").some(names)) continue;
      process.kill(Number(pid), "SIGKILL");
    } catch { /* gone meanwhile */ }
  }
}

/** The registry file: its owner (the meetrec process running the session) and the processes. */
interface Registry {
  owner?: { pid: number; startTicks: string };
  processes: RegisteredProcess[];
}

const registryPath = (workDir: string) => join(workDir, PROCESS_REGISTRY);

/** Whether `p` (pid + start time) is a process that is still running. */
const alive = (p: { pid: number; startTicks: string }) => procStat(p.pid)?.startTicks === p.startTicks;

/**
 * Writes the registry of `workDir` (atomically) for the given role → pid map, owned by this
 * process; roles with no pid are left out. Never throws (the registry only helps clean-up).
 */
export function registerProcesses(workDir: string, pids: Record<string, number | undefined>): void {
  const processes: RegisteredProcess[] = [];
  for (const [role, pid] of Object.entries(pids)) {
    if (!pid) continue;
    const st = procStat(pid);
    if (st) processes.push({ role, pid, startTicks: st.startTicks, group: st.pgrp === pid });
  }
  const me = procStat(process.pid);
  const registry: Registry = { ...(me ? { owner: { pid: process.pid, startTicks: me.startTicks } } : {}), processes };
  try {
    writeFileSync(`${registryPath(workDir)}.tmp`, JSON.stringify(registry));
    renameSync(`${registryPath(workDir)}.tmp`, registryPath(workDir));
  } catch { /* best effort */ }
}

/**
 * Kills (SIGKILL) every process in `workDir`'s registry that is still the same process
 * (same pid and start time); a group leader takes its group with it — unless the registry's
 * owner, a meetrec process (this one included), is still alive: its session is not left over. Returns what
 * was killed. Never throws; no registry → nothing to do.
 */
export function killRegisteredProcesses(workDir: string): RegisteredProcess[] {
  let registry: Registry;
  try {
    const read = JSON.parse(readFileSync(registryPath(workDir), "utf8")) as Registry | RegisteredProcess[];
    registry = Array.isArray(read) ? { processes: read } : read; // an array: written before owners were recorded
  } catch {
    return [];
  }
  if (registry.owner && alive(registry.owner)) return []; // its meetrec lives (this one included): not left over
  const killed: RegisteredProcess[] = [];
  for (const e of registry.processes) {
    const st = procStat(e.pid);
    if (!st || st.startTicks !== e.startTicks) continue;
    try {
      process.kill(e.group ? -e.pid : e.pid, "SIGKILL");
      killed.push(e);
    } catch { /* already gone */ }
  }
  return killed;
}
