/**
 * OpenVidu's stop signal (shared/protocols/openvidu-recording.md §3, §7.4): the server runs
 * `bash -c "echo 'q' > stop"` in the container's working directory (`RecordingManager` →
 * `ComposedRecordingService#stopAndRemoveRecordingContainer`). In the official image `stop` is
 * a regular file made at start (`utils/headless-chrome.sh`: `touch stop`) that ffmpeg reads as
 * its standard input, `q` being ffmpeg's quit key. Here the file is made at start and polled:
 * once it holds a `q`, the stop is asked.
 */
import { readFile } from "node:fs/promises";
import { emptyFile, touchFile } from "./files.js";

/** How often the file is read, ms (the server's own polls run every 100 ms). */
export const STOP_POLL_MS = 100;

/** See module doc. {@link StopFile.create}, then await {@link StopFile.requested}; {@link StopFile.close} ends the polling. */
export class StopFile {
  private timer?: NodeJS.Timeout;
  private fire!: () => void;
  private asked = false;
  /** Resolves once the file holds a `q` (or {@link StopFile.request} was called). */
  readonly requested: Promise<void>;

  private constructor(readonly path: string) {
    this.requested = new Promise((resolve) => { this.fire = resolve; });
  }

  /**
   * Makes `path` if it is not there (mode 666) and watches it. An existing file is kept as it
   * is (composed.sh: `touch stop`): the server's `q` may come before this process is up — its
   * stop exec runs as soon as `docker run` returned — and a new container has no older one.
   * @throws the file system's error when it cannot be made.
   */
  static async create(path: string): Promise<StopFile> {
    await touchFile(path);
    return StopFile.watch(path);
  }

  private static watch(path: string): StopFile {
    const f = new StopFile(path);
    f.timer = setInterval(() => void f.poll(), STOP_POLL_MS);
    void f.poll();
    return f;
  }

  /** Whether the stop was asked. */
  get stopped(): boolean {
    return this.asked;
  }

  /** Asks the stop from inside (a signal, the quick start's `--stop-recording`). */
  request(): void {
    if (this.asked) return;
    this.asked = true;
    clearInterval(this.timer);
    this.fire();
  }

  /**
   * Empties the file (composed_quick_start.sh `--start-recording`: `rm stop; touch stop`, so a
   * `q` of the last recording does not stop the next) and returns a new watch of it.
   */
  async rearm(): Promise<StopFile> {
    this.close();
    await emptyFile(this.path);
    return StopFile.watch(this.path);
  }

  private async poll(): Promise<void> {
    if (this.asked) return;
    // Removed and made again between recordings (quick start): not there is no stop.
    const text = await readFile(this.path, "utf8").catch(() => "");
    if (text.includes("q")) this.request();
  }

  /** Stops watching (idempotent). */
  close(): void {
    clearInterval(this.timer);
  }
}
