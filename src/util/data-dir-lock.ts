/**
 * One meetrec process per data directory: `{dataDir}/meetrec.pid` names the process (pid and
 * start time) that uses it. A second `serve`, or `meetrec recover` while `serve` runs, is
 * refused; a lock left by a killed process is taken over.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MeetrecError } from "./errors.js";
import { procStat } from "./process.js";

interface LockContent {
  pid: number;
  startTicks: string;
  command: string;
}

/** A held lock; {@link DataDirLock.release} removes it (idempotent). */
export class DataDirLock {
  private constructor(private readonly path: string) {}

  /**
   * Takes the lock of `dataDir` for `command` (`serve`, `recover`).
   * @throws MeetrecError `conflict` when a live meetrec process holds it.
   */
  static acquire(dataDir: string, command: string): DataDirLock {
    mkdirSync(dataDir, { recursive: true });
    const path = join(dataDir, "meetrec.pid");
    try {
      const held = JSON.parse(readFileSync(path, "utf8")) as LockContent;
      const st = procStat(held.pid);
      if (held.pid !== process.pid && st && st.startTicks === held.startTicks) {
        throw new MeetrecError("conflict", `meetrec ${held.command} (pid ${held.pid}) is using ${dataDir}; stop it first, or give this process another dataDir`);
      }
    } catch (err) {
      if (err instanceof MeetrecError) throw err; // no or unreadable lock: take it
    }
    const own: LockContent = { pid: process.pid, startTicks: procStat(process.pid)?.startTicks ?? "", command };
    writeFileSync(path, JSON.stringify(own));
    return new DataDirLock(path);
  }

  release(): void {
    try {
      const held = JSON.parse(readFileSync(this.path, "utf8")) as LockContent;
      if (held.pid === process.pid) rmSync(this.path, { force: true });
    } catch { /* gone */ }
  }
}
