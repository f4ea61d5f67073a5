/**
 * What openvidu-server 2.x passes to its recording container, as environment variables
 * (shared/protocols/openvidu-recording.md §1 and §5; OpenVidu `v2.32.2`
 * `recording/service/ComposedRecordingService.java#startRecordingWithVideo`,
 * `ComposedQuickStartRecordingService.java#runContainer` and `#startRecordingWithVideo`), read
 * into one checked shape. Formats follow what the server itself accepts
 * (`openvidu-java-client` `Utils.java`): a bad value is refused here with the variable's name,
 * before anything is written.
 */
import { z } from "zod";
import { MeetrecError } from "../../util/errors.js";

/** The container's modes (`CONTAINER_WORKING_MODE`); the entrypoint's default is `COMPOSED`. */
export const WORKING_MODES = ["COMPOSED", "COMPOSED_QUICK_START", "BROADCAST"] as const;

const flag = (name: string) => z.enum(["true", "false"], { error: `${name} must be true or false` }).transform((v) => v === "true");

/**
 * `WxH`, each side 100–1999 px (`Utils.isAcceptableRecordingResolution`:
 * `^(?!(0))(([0-9]{3})|1([0-9]{3}))x(?!0)(([0-9]{3})|1([0-9]{3}))$`); default `1280x720`.
 */
const Resolution = z.string()
  .regex(/^(?!0)([0-9]{3}|1[0-9]{3})x(?!0)([0-9]{3}|1[0-9]{3})$/, "RESOLUTION must be WIDTHxHEIGHT, each 100–1999 px (e.g. 1280x720)")
  .transform((r) => { const [width, height] = r.split("x").map(Number); return { width, height }; });

/** Frames per second, 1–120 (`Utils.isAcceptableRecordingFrameRate`); default 25. */
const FrameRate = z.string().regex(/^[1-9][0-9]{0,2}$/, "FRAMERATE must be an integer").transform(Number)
  .refine((n) => n >= 1 && n <= 120, "FRAMERATE must be 1–120");

/**
 * A recording id: the session id (`[a-zA-Z0-9_-]+`, `Utils.isValidCustomSessionId`) or, when
 * the session was recorded before, `{sessionId}~{n}` (`RecordingManagerUtils.getFreeRecordingId`).
 * It names a folder and files, so nothing else is accepted.
 */
export const RecordingId = z.string().max(200).regex(/^[a-zA-Z0-9_-]+(~[1-9][0-9]*)?$/, "VIDEO_ID must be an OpenVidu recording id ([a-zA-Z0-9_-]+, optionally ~N)");

/** A recording name (`Utils.isValidRecordingName`: `[a-zA-Z0-9_\-~]+`); it names the media file. */
const RecordingName = z.string().max(200).regex(/^[a-zA-Z0-9_~-]+$/, "VIDEO_NAME must match [a-zA-Z0-9_~-]+ (what OpenVidu accepts as a recording name)");

/** `RECORDING_JSON`: the recording as the server serialized it (`Recording.toJson`), a JSON object on one line. */
const RecordingJson = z.string().min(2).refine((s) => {
  try {
    const v: unknown = JSON.parse(s);
    return typeof v === "object" && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}, "RECORDING_JSON must be a JSON object (the recording as openvidu-server sends it)");

/** The layout page: `http(s)`, often with `OPENVIDUAPP:{secret}@` user info. Never shown in a message. */
const LayoutUrl = z.string().refine((u) => {
  try {
    return ["http:", "https:"].includes(new URL(u).protocol);
  } catch {
    return false;
  }
}, "URL must be an http or https URL (the layout page openvidu-server passes)");

/** What the container is started with, in every mode. */
const ContainerEnv = z.object({
  CONTAINER_WORKING_MODE: z.enum(WORKING_MODES, { error: `CONTAINER_WORKING_MODE must be one of ${WORKING_MODES.join(", ")}` }).default("COMPOSED"),
  DEBUG_MODE: flag("DEBUG_MODE").default(false),
  HEADLESS_CHROME_ONLY: flag("HEADLESS_CHROME_ONLY").default(false),
});

/** What one recording is started with (COMPOSED: the container's env; quick start: the `--start-recording` exec's). */
const RecordingEnv = z.object({
  URL: LayoutUrl,
  ONLY_VIDEO: flag("ONLY_VIDEO").default(false),
  RESOLUTION: Resolution.default({ width: 1280, height: 720 }),
  FRAMERATE: FrameRate.default(25),
  VIDEO_ID: RecordingId,
  VIDEO_NAME: RecordingName.optional(),
  VIDEO_FORMAT: z.literal("mp4", { error: "VIDEO_FORMAT must be mp4 (openvidu-server reads {name}.mp4)" }).default("mp4"),
  RECORDING_JSON: RecordingJson,
  DEBUG_MODE: flag("DEBUG_MODE").default(false),
});

/** The quick-start container's own env (§5: the browser is opened before any recording). */
const QuickStartEnv = z.object({
  URL: LayoutUrl,
  RESOLUTION: Resolution.default({ width: 1280, height: 720 }),
  FRAMERATE: FrameRate.default(25),
});

/** The container's mode and debug flag. */
export interface ContainerMode {
  mode: (typeof WORKING_MODES)[number];
  debug: boolean;
  /** `HEADLESS_CHROME_ONLY=true`: a bare headless browser (not used by the CE server). */
  headlessChromeOnly: boolean;
}

/** One recording as openvidu-server asked for it. */
export interface OpenViduRecording {
  /** `VIDEO_ID`: folder and file names. */
  id: string;
  /** `VIDEO_NAME` (default: the id): the media file is `{name}.mp4`. */
  name: string;
  /** The layout page (holds OpenVidu's secret: never logged). */
  url: string;
  /** `!ONLY_VIDEO`. */
  audio: boolean;
  /** Requested frame size, px, and rate, fps. */
  width: number;
  height: number;
  fps: number;
  /** `RECORDING_JSON` exactly as passed (the first content of `.recording.{id}`). */
  recordingJson: string;
  debug: boolean;
}

/** The quick-start container's browser settings. */
export interface QuickStartPage {
  url: string;
  width: number;
  height: number;
  fps: number;
}

/** `{VARIABLE}: message` lines of a failed parse, never with a value (URL holds a secret). */
function refuse(err: z.ZodError): never {
  const lines = err.issues.map((i) => `${i.path.join(".") || "environment"}: ${i.message}`);
  throw new MeetrecError("config_invalid", `openvidu-recorder: the environment openvidu-server passes is not as expected:\n  ${lines.join("\n  ")}`, { details: { issues: lines } });
}

/** The container's mode. @throws MeetrecError `config_invalid` naming the variable. */
export function containerMode(env: NodeJS.ProcessEnv): ContainerMode {
  const r = ContainerEnv.safeParse(env);
  if (!r.success) refuse(r.error);
  return { mode: r.data.CONTAINER_WORKING_MODE, debug: r.data.DEBUG_MODE, headlessChromeOnly: r.data.HEADLESS_CHROME_ONLY };
}

/** One recording from `env` (§1). @throws MeetrecError `config_invalid` naming each bad variable. */
export function recordingFromEnv(env: Record<string, string | undefined>): OpenViduRecording {
  const r = RecordingEnv.safeParse(env);
  if (!r.success) refuse(r.error);
  const e = r.data;
  return {
    id: e.VIDEO_ID, name: e.VIDEO_NAME ?? e.VIDEO_ID, url: e.URL, audio: !e.ONLY_VIDEO,
    width: e.RESOLUTION.width, height: e.RESOLUTION.height, fps: e.FRAMERATE, recordingJson: e.RECORDING_JSON, debug: e.DEBUG_MODE,
  };
}

/** The quick-start container's page from `env` (§5). @throws MeetrecError `config_invalid`. */
export function quickStartFromEnv(env: NodeJS.ProcessEnv): QuickStartPage {
  const r = QuickStartEnv.safeParse(env);
  if (!r.success) refuse(r.error);
  return { url: r.data.URL, width: r.data.RESOLUTION.width, height: r.data.RESOLUTION.height, fps: r.data.FRAMERATE };
}

/** The variables a quick-start `--start-recording` exec carries to the running container (§5: all of §1 but URL and the mode). */
export const START_RECORDING_VARIABLES = ["DEBUG_MODE", "RESOLUTION", "FRAMERATE", "ONLY_VIDEO", "VIDEO_ID", "VIDEO_NAME", "VIDEO_FORMAT", "RECORDING_JSON"] as const;
