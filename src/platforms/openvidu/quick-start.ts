/**
 * OpenVidu's COMPOSED_QUICK_START container (shared/protocols/openvidu-recording.md §5;
 * OpenVidu `v2.32.2` `ComposedQuickStartRecordingService.java`,
 * `docker/openvidu-recording/scripts/composed_quick_start.sh`). openvidu-server starts it when
 * a session whose default output mode is COMPOSED_QUICK_START gets its first participant, with
 * only `URL`, `RESOLUTION`, `FRAMERATE`, `DEBUG_MODE` and the mode; it must then wait with the
 * layout open in a browser. Each recording of the session is an exec into it:
 *
 * - `export …=… && ./composed_quick_start.sh --start-recording > /var/log/ffmpeg.log 2>&1 &`
 *   (the recording's variables, §1 without `URL`), then the server's 30 s start check;
 * - `./composed_quick_start.sh --stop-recording`, waited ≤ 10 s, after which the server reads
 *   `{id}.info` at once; it returns at once when the recording is already done (`{id}.jpg`).
 *
 * Here the container's process ({@link runQuickStart}) keeps a capture session open on the
 * layout (display, sound sink, browser, page — everything but the encoder) and serves both
 * execs over a Unix socket in its working directory; the image's `composed_quick_start.sh`
 * runs `meetrec openvidu-recorder --start-recording|--stop-recording`
 * ({@link quickStartRequest}). A start binds the open session to the recording, so capture
 * begins at once; when the recording is done the next session is opened. `q` in `./stop`
 * stops the recording too (the official scripts' own mechanism), and so does SIGTERM.
 */
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { z } from "zod";
import { CaptureSession, idleHooks, sameStage, type SessionHooks, type SessionOptions } from "../../capture/index.js";
import { browserEgressFor } from "../../egress/index.js";
import { MeetrecError, errorMessage } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { recordingFromEnv, START_RECORDING_VARIABLES, type OpenViduRecording, type QuickStartPage } from "./env.js";
import { OPENVIDU_BACKEND, openviduVideo, recordInContainer, type ContainerDeps, type ContainerOutcome } from "./recording.js";
import { StopFile } from "./stop-file.js";

/** The socket the container's process listens on, in its working directory (where the execs run too). */
export const QUICK_START_SOCKET = ".meetrec-quick-start.sock";

/** One request of an exec to the container's process: a line of JSON. */
export const QuickStartRequest = z.discriminatedUnion("op", [
  /** `--start-recording`: the exec's recording variables (§5). */
  z.strictObject({ op: z.literal("start"), env: z.record(z.string(), z.string()) }),
  /** `--stop-recording`. */
  z.strictObject({ op: z.literal("stop") }),
]);
export type QuickStartRequest = z.infer<typeof QuickStartRequest>;

/** The answer: a line of JSON. */
export const QuickStartReply = z.strictObject({
  ok: z.boolean(),
  /** What happened, for the exec's output (`/var/log/ffmpeg.log` for a start). */
  message: z.string(),
});
export type QuickStartReply = z.infer<typeof QuickStartReply>;

/**
 * The exec's side: sends `request` to the container's process through `socketPath` and returns
 * its answer. A stop waits for the whole stop (the server allows 10 s). @throws MeetrecError
 * `not_ready` when no container process listens there.
 */
export async function quickStartRequest(socketPath: string, request: QuickStartRequest): Promise<QuickStartReply> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let answered = false;
    sock.once("error", (err) => reject(new MeetrecError("not_ready", `No quick-start container process answers on ${socketPath} (${errorMessage(err)}): was the container started with CONTAINER_WORKING_MODE=COMPOSED_QUICK_START?`, { cause: err })));
    sock.once("connect", () => sock.write(`${JSON.stringify(request)}\n`));
    createInterface({ input: sock }).once("line", (line) => {
      answered = true;
      sock.end();
      try {
        resolve(QuickStartReply.parse(JSON.parse(line)));
      } catch (err) {
        reject(new MeetrecError("internal", `The container process answered something else than a reply: ${errorMessage(err)}`));
      }
    });
    sock.once("close", () => { if (!answered) reject(new MeetrecError("internal", "The container process closed the connection without an answer")); });
  });
}

/** The quick-start execs' variables from `env` (what {@link QuickStartRequest} `start` carries). */
export function startRecordingEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(START_RECORDING_VARIABLES.filter((k) => env[k] !== undefined).map((k) => [k, env[k]!]));
}

/** The live state of the container: the open session waiting, the recording running, the last one done. */
interface Current {
  rec: OpenViduRecording;
  stop: StopFile;
  done: Promise<ContainerOutcome>;
}

/**
 * The quick-start container's process (see module doc): opens the layout, serves the execs on
 * `{cwd}/{QUICK_START_SOCKET}`, and runs until `shutdown` resolves (SIGTERM), stopping a
 * recording under way first (its files are written). @throws MeetrecError when the socket
 * cannot be made.
 */
export async function runQuickStart(d: ContainerDeps, page: QuickStartPage, o: { cwd: string; shutdown: Promise<void> }): Promise<void> {
  const { config } = d;
  const log = d.log.child({ quickStart: true });
  const socketPath = join(o.cwd, QUICK_START_SOCKET);
  const stopPath = join(o.cwd, "stop");
  let stopFile = await StopFile.create(stopPath);
  let current: Current | undefined;
  /** Recordings done in this container, by id (a late `--stop-recording` answers at once). */
  const done = new Map<string, ContainerOutcome>();
  let warm: Promise<CaptureSession | undefined> | undefined;
  let closed = false;

  /** The options the waiting session is opened with (the recording binds its own, same stage). */
  const stage = async (): Promise<SessionOptions> => ({
    recordingId: `openvidu-quick-start-${process.pid}`, url: page.url, join: config.openvidu.join, mode: "video", browser: "chromium",
    video: openviduVideo(config, page.width, page.height, page.fps), capture: config.capture,
    workDir: join(tmpdir(), `meetrec-openvidu-quick-start-${process.pid}-${randomUUID().slice(0, 8)}`), pulse: await d.node.pulseServer(), log,
    acceptInsecureCerts: true, egress: browserEgressFor(config, OPENVIDU_BACKEND),
  });
  const idle = idleHooks(log);
  const open = (): Promise<CaptureSession | undefined> => (warm = (async () => {
    if (closed) return undefined;
    const opts = await stage();
    const s = new CaptureSession(opts, idle);
    try {
      await s.open();
      rmSync(opts.workDir, { recursive: true, force: true }); // its process registry moves to the recording's work directory when bound
      log.info("the layout is open: ready to record");
      return s;
    } catch (err) {
      log.error({ code: (err as MeetrecError).code, err: errorMessage(err) }, "the layout page could not be opened; a recording will open it again");
      return undefined;
    }
  })());

  const start = async (env: Record<string, string>): Promise<QuickStartReply> => {
    const rec = recordingFromEnv({ ...env, URL: page.url });
    if (current) {
      return current.rec.id === rec.id ? { ok: true, message: `recording ${rec.id} is already under way` } : { ok: false, message: `recording ${current.rec.id} is under way; stop it first` };
    }
    if (done.has(rec.id)) return { ok: false, message: `recording ${rec.id} is already done` };
    stopFile = await stopFile.rearm(); // composed_quick_start.sh: rm stop; touch stop
    const session = await (warm ?? open());
    warm = undefined;
    const factory = (opts: SessionOptions, hooks: SessionHooks): CaptureSession => {
      if (session?.ready && sameStage(session.options, opts)) return session.bind(opts, hooks);
      // Another frame size than the container's, or the waiting browser is gone: a new session.
      if (session) void session.close();
      log.info("the waiting session does not fit this recording: opening a new one");
      return new CaptureSession(opts, hooks);
    };
    const stop = stopFile;
    const run = recordInContainer(d, rec, stop, { session: factory });
    current = { rec, stop, done: run };
    void run.then((outcome) => {
      done.set(rec.id, outcome);
      current = undefined;
      if (!closed) void open();
    });
    return { ok: true, message: `recording ${rec.id} started` };
  };

  const stopRecording = async (): Promise<QuickStartReply> => {
    const c = current;
    if (!c) return { ok: true, message: "no recording under way" };
    c.stop.request();
    const outcome = await c.done;
    return { ok: true, message: `recording ${c.rec.id} ${outcome.status}` };
  };

  // Requests are handled one at a time, in order (a start and a stop never interleave).
  let queue: Promise<unknown> = Promise.resolve();
  const handle = async (line: string): Promise<QuickStartReply> => {
    try {
      const req = QuickStartRequest.parse(JSON.parse(line));
      return req.op === "start" ? await start(req.env) : await stopRecording();
    } catch (err) {
      return { ok: false, message: err instanceof MeetrecError ? err.message : `bad request: ${errorMessage(err)}` };
    }
  };
  const server: Server = createServer((sock: Socket) => {
    createInterface({ input: sock }).once("line", (line) => {
      const answered = queue.then(() => handle(line)).then((reply) => {
        log.info({ ok: reply.ok }, reply.message);
        sock.end(`${JSON.stringify(reply)}\n`);
      });
      queue = answered.catch(() => undefined);
    });
    sock.on("error", () => undefined);
  });
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new MeetrecError("internal", `Cannot listen on ${socketPath}: ${errorMessage(err)}`, { cause: err })));
    server.listen(socketPath, resolve);
  });
  void open();
  await o.shutdown;
  closed = true;
  log.info("shutting down");
  server.close();
  if (current) {
    current.stop.request();
    await current.done;
  }
  await (await warm)?.close();
  stopFile.close();
  rmSync(socketPath, { force: true });
}
