/**
 * OpenVidu 2's recording container, its rules without a browser: the environment
 * openvidu-server passes (what it accepts itself), the files it reads (`.recording.{id}`
 * sealed keeping every key, `.info` as `RecordingInfoUtils` reads it), the stop file, the
 * settings in the recordings folder's `.env`, and the options a recording is made with.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { encoderArgs, sameStage, type SessionOptions } from "../../src/capture/index.js";
import { parseConfig } from "../../src/config/index.js";
import {
  RecordingFolder, StopFile, addOpenViduBackend, containerMode, loadContainerConfig, quickStartFromEnv, readInfo, recordingFromEnv, recordingOptions, sealedFields,
} from "../../src/platforms/openvidu/index.js";
import { MeetrecError } from "../../src/util/errors.js";
import { withoutUrl } from "../../src/util/redact.js";
import { recordingJson, serverReadsInfo } from "../fixtures/openvidu-server.js";
import { scratchDir } from "../helpers/scratch.js";

const SECRET = "s3cr3t-value";
const URL_ = `https://OPENVIDUAPP:${SECRET}@localhost:4443/dashboard/#/layout-best-fit/ses_X/${SECRET}/4443/false`;
const rec = { id: "ses_X~2", sessionId: "ses_X", name: "ses_X~2", url: URL_, resolution: "1280x720", frameRate: 25, hasAudio: true, createdAt: 1_700_000_000_000 };
const env = (over: Record<string, string | undefined> = {}) => ({
  URL: URL_, ONLY_VIDEO: "false", RESOLUTION: "1280x720", FRAMERATE: "25", VIDEO_ID: "ses_X~2", VIDEO_NAME: "ses_X~2", VIDEO_FORMAT: "mp4",
  RECORDING_JSON: recordingJson(rec), DEBUG_MODE: "false", ...over,
});
const tmp = () => scratchDir("meetrec-ov-unit-");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the environment openvidu-server passes (§1, §5)", () => {
  test("a COMPOSED recording: every variable read, defaults as the official scripts have them", () => {
    expect(recordingFromEnv(env())).toEqual({ id: "ses_X~2", name: "ses_X~2", url: URL_, audio: true, width: 1280, height: 720, fps: 25, recordingJson: recordingJson(rec), debug: false });
    const min = recordingFromEnv({ URL: URL_, VIDEO_ID: "ses_Y", RECORDING_JSON: "{}" });
    expect(min).toMatchObject({ name: "ses_Y", audio: true, width: 1280, height: 720, fps: 25 });
    expect(recordingFromEnv(env({ ONLY_VIDEO: "true", RESOLUTION: "1999x100", FRAMERATE: "120" }))).toMatchObject({ audio: false, width: 1999, height: 100, fps: 120 });
    expect(containerMode({})).toEqual({ mode: "COMPOSED", debug: false, headlessChromeOnly: false });
    expect(containerMode({ CONTAINER_WORKING_MODE: "COMPOSED_QUICK_START", DEBUG_MODE: "true" })).toMatchObject({ mode: "COMPOSED_QUICK_START", debug: true });
    expect(quickStartFromEnv({ URL: URL_, RESOLUTION: "640x360", FRAMERATE: "15" })).toEqual({ url: URL_, width: 640, height: 360, fps: 15 });
  });

  test("what the server itself would not pass is refused, naming the variable and never showing the URL", () => {
    const bad: Record<string, string | undefined>[] = [
      { VIDEO_ID: "../etc" }, { VIDEO_ID: "a/b" }, { VIDEO_ID: "ses~0" }, { VIDEO_ID: undefined },
      { VIDEO_NAME: ".hidden" }, { VIDEO_NAME: "a b" }, { VIDEO_NAME: "x/y" },
      { RESOLUTION: "0920x1080" }, { RESOLUTION: "2000x1000" }, { RESOLUTION: "99x100" }, { RESOLUTION: "1280*720" },
      { FRAMERATE: "0" }, { FRAMERATE: "121" }, { FRAMERATE: "2.5" }, { ONLY_VIDEO: "yes" }, { VIDEO_FORMAT: "webm" },
      { RECORDING_JSON: "[1]" }, { RECORDING_JSON: "not json" }, { RECORDING_JSON: undefined },
      { URL: "ftp://x/" }, { URL: "not a url" },
    ];
    for (const b of bad) {
      const key = Object.keys(b)[0];
      let err: unknown;
      try { recordingFromEnv(env(b)); } catch (e) { err = e; }
      expect(err, JSON.stringify(b)).toBeInstanceOf(MeetrecError);
      expect((err as MeetrecError).code).toBe("config_invalid");
      expect((err as MeetrecError).message).toContain(key);
      expect((err as MeetrecError).message).not.toContain(SECRET);
    }
    expect(() => containerMode({ CONTAINER_WORKING_MODE: "INDIVIDUAL" })).toThrow(/CONTAINER_WORKING_MODE/);
  });
});

describe("the recording's options", () => {
  test("the layout's origin is named for the backend; odd sizes one pixel smaller; no sound with ONLY_VIDEO; TLS not verified", () => {
    const config = parseConfig({ openvidu: { join: [{ goto: "https://other.example/x" }] } });
    addOpenViduBackend(config, URL_);
    expect(config.backends.openvidu.allowedOrigins).toEqual(["https://localhost:4443", "https://other.example"]);
    const o = recordingOptions(config, recordingFromEnv(env({ RESOLUTION: "1281x721", ONLY_VIDEO: "true" })));
    expect(o).toMatchObject({ url: URL_, mode: "video", audio: false, browser: "chromium", video: { width: 1280, height: 720, fps: 25, bitrateKbps: 2500 }, acceptInsecureCerts: true, maxDurationSeconds: 14400 });
    // openvidu-server stops a recording whose session emptied; meetrec does not pre-empt it ...
    expect(o.autoStop).toEqual({ emptySeconds: 0, idleSeconds: 0 });
    // ... unless the operator asks for it.
    const own = parseConfig({ backends: { openvidu: { autoStop: { emptySeconds: 300 } } } });
    expect(recordingOptions(own, recordingFromEnv(env({}))).autoStop).toEqual({ emptySeconds: 300, idleSeconds: 0 });
  });

  test("above meetrec's videoLimits: refused with the key to raise", () => {
    const config = parseConfig({ backends: { openvidu: { videoLimits: { fps: 60 } } } });
    expect(recordingOptions(config, recordingFromEnv(env({ FRAMERATE: "60" }))).video.fps).toBe(60);
    expect(() => recordingOptions(config, recordingFromEnv(env({ FRAMERATE: "61" })))).toThrow(/fps 61 fps.*videoLimits\.fps = 60.*raise videoLimits/);
  });
});

describe("the files the server reads (§4)", () => {
  test(".recording.{id}: RECORDING_JSON at the start, kept when it exists; after the stop only the five keys change, written under a name the server does not list", async () => {
    const dir = tmp();
    const f = new RecordingFolder(dir, rec.id, rec.name);
    await f.create();
    await f.writeMetadataIfAbsent(recordingJson(rec));
    expect(readFileSync(f.metadataFile, "utf8")).toBe(`${recordingJson(rec)}\n`);
    await f.writeMetadataIfAbsent("{\"other\":1}");
    expect(readFileSync(f.metadataFile, "utf8")).toBe(`${recordingJson(rec)}\n`);
    // The server rewrote it as stopped; the container seals what it finds.
    writeFileSync(f.metadataFile, recordingJson(rec, "stopped"));
    await f.seal({ hasAudio: false, hasVideo: true, duration: 12.345, size: 678, status: "stopped" }, recordingJson(rec));
    const sealed = JSON.parse(readFileSync(f.metadataFile, "utf8"));
    expect(sealed).toEqual({ ...JSON.parse(recordingJson(rec, "stopped")), hasAudio: false, hasVideo: true, duration: 12.345, size: 678 });
    expect(readdirSync(f.dir)).toEqual([`.recording.${rec.id}`]);
    expect(await f.finished()).toBe(false);
    writeFileSync(f.metadataFile, recordingJson(rec, "ready"));
    expect(await f.finished()).toBe(true);
  });

  test(".info is ffprobe's JSON of the media, read as RecordingInfoUtils reads it; no stream → failed", async () => {
    const dir = tmp();
    const f = new RecordingFolder(dir, "ses_I", "my_name");
    await f.create();
    execFileSync("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=15:duration=2", "-f", "lavfi", "-i", "sine=f=440:duration=2",
      "-c:v", "libx264", "-c:a", "aac", "-shortest", f.mediaFile]);
    const summary = await f.writeInfo("ffprobe");
    expect(summary).toMatchObject({ hasAudio: true, hasVideo: true });
    expect(summary.durationSeconds).toBeCloseTo(2, 0);
    const text = readFileSync(f.infoFile, "utf8");
    expect(readInfo(text)).toEqual(summary);
    expect(serverReadsInfo(text)).toMatchObject({ status: "ready", resolution: "320x180", frameRate: 15, hasAudio: true, duration: summary.durationSeconds, size: summary.bytes });
    expect(sealedFields(summary)).toEqual({ hasAudio: true, hasVideo: true, duration: summary.durationSeconds, size: summary.bytes, status: "stopped" });
    expect(sealedFields(undefined)).toEqual({ hasAudio: false, hasVideo: false, duration: 0, size: 0, status: "failed" });
    await f.writeThumbnail("ffmpeg", summary.durationSeconds, 1025, 577);
    const jpg = JSON.parse(execFileSync("ffprobe", ["-v", "error", "-print_format", "json", "-show_streams", f.thumbnailFile], { encoding: "utf8" })).streams[0];
    expect({ codec: jpg.codec_name, width: jpg.width, height: jpg.height }).toEqual({ codec: "mjpeg", width: 480, height: 270 });
    expect(await f.finished()).toBe(true);
  });
});

describe("the stop file (§3)", () => {
  test("a q already there stops at once (the server's exec can come first); a q written later stops; rearm empties it", async () => {
    const dir = tmp();
    const path = join(dir, "stop");
    writeFileSync(path, "q\n");
    const early = await StopFile.create(path);
    await early.requested;
    expect(early.stopped).toBe(true);
    const next = await early.rearm();
    expect(readFileSync(path, "utf8")).toBe("");
    let fired = false;
    void next.requested.then(() => { fired = true; });
    await sleep(300);
    expect(fired).toBe(false);
    execFileSync("bash", ["-c", "echo 'q' > stop"], { cwd: dir });
    await next.requested;
    next.close();
  });
});

describe("settings in the recordings folder's .env", () => {
  test("MEETREC_* entries apply beneath the environment; other keys are ignored; the folder itself cannot move", () => {
    const dir = tmp();
    writeFileSync(join(dir, ".env"), "# HA recorder\nHA_RECORDING_STORAGE=s3\nMEETREC_SEGMENTS__S3__BUCKET=segs\nMEETREC_VIDEO__BITRATE_KBPS=\"1500\"\nMEETREC_LOG_LEVEL=debug\n");
    const c = loadContainerConfig(undefined, { MEETREC_OPENVIDU__RECORDINGS_DIR: dir, MEETREC_LOG_LEVEL: "warn" });
    expect(c.segments.s3?.bucket).toBe("segs");
    expect(c.video.bitrateKbps).toBe(1500);
    expect(c.logLevel).toBe("warn");
    expect(c.openvidu.recordingsDir).toBe(dir);
    // The folder named by a config file: a .env in it may not name another (the environment's own setting would win anyway).
    writeFileSync(join(dir, "meetrec.yaml"), `openvidu:\n  recordingsDir: ${dir}\n`);
    writeFileSync(join(dir, ".env"), `MEETREC_OPENVIDU__RECORDINGS_DIR=${join(dir, "elsewhere")}\n`);
    expect(() => loadContainerConfig(join(dir, "meetrec.yaml"), {})).toThrow(/sets openvidu.recordingsDir/);
    expect(loadContainerConfig(undefined, { MEETREC_OPENVIDU__RECORDINGS_DIR: join(dir, "none") }).segments.s3).toBeUndefined();
  });
});

describe("capture pieces the container needs", () => {
  test("ONLY_VIDEO: the encoder opens no sound input and writes no audio stream", () => {
    const base = { display: ":5", width: 640, height: 360, fps: 25, bitrateKbps: 1000, audioBitrateKbps: 128, monitor: "s.monitor", pulseServer: "unix:/x", segmentSeconds: 2, x264Preset: "veryfast", dir: "/d", mode: "video" as const };
    const a = encoderArgs({ ...base, audio: false }, 1_000_000);
    expect(a).not.toContain("pulse");
    expect(a).not.toContain("-c:a");
    expect(a.filter((x) => x === "-map")).toHaveLength(1);
    expect(encoderArgs(base, 1_000_000)).toContain("pulse");
  });

  test("a session opened for the layout fits a recording of the same page and size, whatever its rate and sound", () => {
    const o = { url: URL_, join: [], browser: "chromium", mode: "video", video: { width: 640, height: 360, fps: 25, bitrateKbps: 1 }, acceptInsecureCerts: true } as unknown as SessionOptions;
    expect(sameStage(o, { ...o, audio: false, video: { ...o.video, fps: 15 } })).toBe(true);
    expect(sameStage(o, { ...o, video: { ...o.video, width: 1280 } })).toBe(false);
    expect(sameStage(o, { ...o, join: [{ click: "#x" }] })).toBe(false);
  });

  test("a library's message that repeats the URL: every spelling of it is cut to its place", () => {
    const msg = `net::ERR_CONNECTION_REFUSED at ${URL_}\n    at goto (${new URL(URL_).href})`;
    const out = withoutUrl(msg, URL_);
    expect(out).not.toContain(SECRET);
    expect(out).toContain("https://localhost:4443/dashboard/#…");
  });
});
