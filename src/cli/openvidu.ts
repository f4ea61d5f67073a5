/**
 * `meetrec openvidu-recorder`: the entrypoint of an image that replaces OpenVidu 2's
 * `openvidu/openvidu-recording` (shared/protocols/openvidu-recording.md). It reads what
 * openvidu-server passes (`CONTAINER_WORKING_MODE`, `URL`, `VIDEO_ID`, …) and records:
 *
 * - `COMPOSED` (default): one recording, stopped by `q` in `./stop` (or SIGTERM); exits once
 *   the server's files are written — 0, or 1 when nothing was captured;
 * - `COMPOSED_QUICK_START`: waits with the layout open and records on
 *   `--start-recording` / `--stop-recording` (the image's `composed_quick_start.sh` runs this
 *   command with them), until SIGTERM.
 *
 * Once the mode is read, whatever fails, it waits for the server's stop before it exits:
 * openvidu-server's stop execs into the container and fails when it is no longer running. (A
 * mode the CE server never passes is refused at once.)
 */
import { join } from "node:path";
import { OpenViduContainerHost } from "../hosts/openvidu-container.js";
import {
  QUICK_START_SOCKET, StopFile, addOpenViduBackend, containerMode, loadContainerConfig, quickStartFromEnv, quickStartRequest, recordInContainer,
  recordingFromEnv, runQuickStart, startRecordingEnv,
} from "../platforms/openvidu/index.js";
import { MeetrecError, errorMessage } from "../util/errors.js";
import { createLogger, type Logger } from "../util/log.js";

/** Options of `meetrec openvidu-recorder`. */
export interface OpenViduRecorderOptions {
  config?: string;
  /** Quick start: hand the exec's recording variables to the container's process. */
  startRecording?: boolean;
  /** Quick start: stop the recording under way; returns once its files are written. */
  stopRecording?: boolean;
}

const say = (err: unknown) => process.stderr.write(`meetrec openvidu-recorder: ${err instanceof MeetrecError ? `${err.code}: ` : ""}${errorMessage(err)}\n`);

/** Resolves once every buffered log line is written (the process exits right after). */
const flushed = (log: Logger) => new Promise<void>((resolve) => log.flush(() => resolve()));

/**
 * Runs the entrypoint (see module doc); resolves with the exit code. Errors before the
 * recording (a bad variable, a bad configuration) are written to stderr and answered with 2,
 * after the stop (COMPOSED) or SIGTERM (quick start).
 */
export async function openviduRecorder(o: OpenViduRecorderOptions): Promise<number> {
  const cwd = process.cwd();
  if (o.startRecording || o.stopRecording) {
    const reply = await quickStartRequest(join(cwd, QUICK_START_SOCKET), o.startRecording ? { op: "start", env: startRecordingEnv(process.env) } : { op: "stop" });
    process.stdout.write(`${reply.message}\n`);
    return reply.ok ? 0 : 1;
  }
  const mode = containerMode(process.env);
  if (mode.headlessChromeOnly || mode.mode === "BROADCAST") {
    throw new MeetrecError("config_invalid", `${mode.headlessChromeOnly ? "HEADLESS_CHROME_ONLY=true" : "CONTAINER_WORKING_MODE=BROADCAST"} is not supported by meetrec's recording image (openvidu-server CE never asks for it; see the README)`);
  }
  // First of all the stop file: openvidu-server's stop must find it, whatever fails next.
  const stop = mode.mode === "COMPOSED" ? await StopFile.create(join(cwd, "stop")) : undefined;
  let signalled!: () => void;
  const shutdown = new Promise<void>((resolve) => { signalled = resolve; });
  const onSignal = () => { stop?.request(); signalled(); };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const waitForStop = () => (stop ? stop.requested : shutdown);
  let log: Logger | undefined;
  try {
    const config = loadContainerConfig(o.config);
    const level = process.env.MEETREC_LOG_LEVEL ?? (mode.debug ? "debug" : config.logLevel);
    if (mode.mode === "COMPOSED") {
      const rec = recordingFromEnv(process.env);
      // DEBUG_MODE: the log goes into the recording's folder too, as the official image copies its own.
      log = createLogger(level, rec.debug ? { copyTo: join(config.openvidu.recordingsDir, rec.id, `${rec.id}-container.log`) } : {});
      addOpenViduBackend(config, rec.url);
      const host = await OpenViduContainerHost.start(config, log);
      try {
        const outcome = await recordInContainer(host, rec, stop!);
        return outcome.status === "failed" ? 1 : 0;
      } finally {
        stop!.close();
        await host.close();
      }
    }
    const page = quickStartFromEnv(process.env);
    log = createLogger(level);
    addOpenViduBackend(config, page.url);
    const host = await OpenViduContainerHost.start(config, log);
    try {
      await runQuickStart(host, page, { cwd, shutdown });
      return 0;
    } finally {
      await host.close();
    }
  } catch (err) {
    if (log) log.error({ code: (err as MeetrecError).code, err: errorMessage(err) }, "cannot record");
    else say(err);
    await waitForStop();
    return 2;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    if (log) await flushed(log);
  }
}
