/**
 * A child process owned by exactly one object, with an idempotent, awaitable `stop()`.
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { readFileSync } from "node:fs";

/** A spawned process with its exit as a promise. */
export class ManagedProcess {
  readonly child: ChildProcess;
  /** Resolves with the exit code (or null when killed by a signal) once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderrTail = "";

  constructor(readonly command: string, readonly args: string[], opts: SpawnOptions = {}) {
    this.child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"], ...opts });
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => resolve({ code, signal }));
      this.child.once("error", () => resolve({ code: -1, signal: null }));
    });
    this.child.stderr?.on("data", (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-4000);
    });
  }

  /** The last ~4000 characters the process wrote to stderr. */
  get stderr(): string {
    return this.stderrTail;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Sends `signal` (default SIGTERM), waits up to `graceMs` (default 5000 ms), then SIGKILL.
   * Safe to call many times; resolves when the process has exited.
   */
  async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 5000): Promise<void> {
    if (this.running) {
      this.child.kill(signal);
      const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), graceMs).unref());
      if ((await Promise.race([this.exited, timer])) === "timeout" && this.running) this.child.kill("SIGKILL");
    }
    await this.exited;
  }
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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
