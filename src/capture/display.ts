/**
 * A private X display per recording (Xvfb), sized to the video.
 */
import { MeetrecError } from "../util/errors.js";
import { ManagedProcess } from "../util/process.js";

/** A running Xvfb server. `name` is the DISPLAY value (`:17`). */
export class XvfbDisplay {
  private constructor(readonly name: string, readonly width: number, readonly height: number, private readonly proc: ManagedProcess) {}

  /** PID of the Xvfb process. */
  get pid(): number | undefined {
    return this.proc.pid;
  }

  /**
   * Starts Xvfb at `width`×`height` px, depth 24, TCP off. The display number is chosen by
   * Xvfb itself (`-displayfd`), which takes the lock file atomically, so concurrent
   * recordings never collide.
   * `env` is added to meetrec's own environment (the recording's marker).
   * @throws MeetrecError `display_failed` when Xvfb exits or does not report a display in `timeoutMs` (default 10 000 ms).
   */
  static async start(opts: { width: number; height: number; xvfbPath?: string; timeoutMs?: number; env?: Record<string, string> }): Promise<XvfbDisplay> {
    const proc = new ManagedProcess(opts.xvfbPath ?? "Xvfb", [
      "-displayfd", "3", "-screen", "0", `${opts.width}x${opts.height}x24`, "-nolisten", "tcp", "-noreset", "-nocursor",
    ], { stdio: ["ignore", "ignore", "pipe", "pipe"], env: { ...process.env, ...opts.env } });
    const fd3 = proc.child.stdio[3] as NodeJS.ReadableStream | null;
    const number = await new Promise<string>((resolve, reject) => {
      let buf = "";
      const timer = setTimeout(() => reject(new Error("no display number reported in time")), opts.timeoutMs ?? 10000);
      fd3?.on("data", (d: Buffer) => {
        buf += d.toString();
        if (buf.includes("\n")) { clearTimeout(timer); resolve(buf.trim()); }
      });
      void proc.exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`Xvfb exited (${code}): ${proc.stderr.trim().slice(-500)}`)); });
    }).catch(async (err: Error) => {
      await proc.stop("SIGKILL");
      throw new MeetrecError("display_failed", `Cannot start the virtual display: ${err.message}. Is the xvfb package installed?`, { cause: err });
    });
    return new XvfbDisplay(`:${number}`, opts.width, opts.height, proc);
  }

  /** Stops Xvfb. Idempotent. */
  async close(): Promise<void> {
    await this.proc.stop("SIGTERM", 3000);
  }
}
