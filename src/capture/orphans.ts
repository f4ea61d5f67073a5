/**
 * The process registry of a capture session, `{workDir}/pids.json`: which display, browser and
 * encoder processes the session runs. If meetrec is killed (-9, OOM) these processes outlive
 * it; the next start reads the registry and kills exactly them before it resumes the
 * recording, so an old encoder never writes into a resumed recording's directory.
 *
 * A process is identified by pid *and* its start time (`/proc/{pid}/stat` field 22, clock
 * ticks since boot), so a recycled pid is never killed by mistake.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** One registered process. */
export interface RegisteredProcess {
  role: string;
  pid: number;
  /** `/proc/{pid}/stat` start time (clock ticks since boot). */
  startTicks: string;
  /** The process leads its own process group (puppeteer's browsers): the group is killed. */
  group: boolean;
}

/** `[pgrp, starttime]` of a live process, or undefined when it does not exist (Linux `/proc`). */
export function procStat(pid: number): { pgrp: number; startTicks: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may contain spaces.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { pgrp: Number(f[2]), startTicks: f[19] };
  } catch {
    return undefined;
  }
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

const registryPath = (workDir: string) => join(workDir, "pids.json");

/**
 * Writes the registry of `workDir` (atomically) for the given role → pid map; roles with no
 * pid are left out. Never throws (the registry only helps clean-up).
 */
export function registerProcesses(workDir: string, pids: Record<string, number | undefined>): void {
  const entries: RegisteredProcess[] = [];
  for (const [role, pid] of Object.entries(pids)) {
    if (!pid) continue;
    const st = procStat(pid);
    if (st) entries.push({ role, pid, startTicks: st.startTicks, group: st.pgrp === pid });
  }
  try {
    writeFileSync(`${registryPath(workDir)}.tmp`, JSON.stringify(entries));
    renameSync(`${registryPath(workDir)}.tmp`, registryPath(workDir));
  } catch { /* best effort */ }
}

/**
 * Kills (SIGKILL) every process in `workDir`'s registry that is still the same process
 * (same pid and start time); a group leader takes its group with it. Returns what was killed.
 * Never throws; no registry → nothing to do.
 */
export function killRegisteredProcesses(workDir: string): RegisteredProcess[] {
  let entries: RegisteredProcess[];
  try {
    entries = JSON.parse(readFileSync(registryPath(workDir), "utf8")) as RegisteredProcess[];
  } catch {
    return [];
  }
  const killed: RegisteredProcess[] = [];
  for (const e of entries) {
    const st = procStat(e.pid);
    if (!st || st.startTicks !== e.startTicks) continue;
    try {
      process.kill(e.group ? -e.pid : e.pid, "SIGKILL");
      killed.push(e);
    } catch { /* already gone */ }
  }
  return killed;
}
