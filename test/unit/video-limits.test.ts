/**
 * Video ceilings (`videoLimits`, global and per backend): the configuration refuses video
 * defaults above them, and resolving a request checks the merged settings (global defaults,
 * the backend's, the request's) against the backend's ceilings.
 */
import { describe, expect, test } from "vitest";
import { resolveOptions } from "../../src/recordings/index.js";
import { importNextcloudConf, parseConfig, videoLimitsOf } from "../../src/config/index.js";
import { MeetrecError } from "../../src/util/errors.js";

const TALK = { url: "https://cloud.example.com/", secret: "cloud-secret-0123456789" };

describe("video ceilings in the configuration", () => {
  test("defaults: 1920×1080, 30 fps, 8000 kbit/s; a backend overrides field by field", () => {
    const cfg = parseConfig({ backends: { big: { apiKey: "big-key-0123456789abc", videoLimits: { width: 3840, height: 2160 } } } });
    expect(cfg.videoLimits).toEqual({ width: 1920, height: 1080, fps: 30, bitrateKbps: 8000 });
    expect(videoLimitsOf(cfg, "big")).toEqual({ width: 3840, height: 2160, fps: 30, bitrateKbps: 8000 });
    expect(videoLimitsOf(cfg, "unknown")).toEqual(cfg.videoLimits);
  });

  test("a backend's video default above its ceiling is refused, naming the key and the ceiling", () => {
    expect(() => parseConfig({ backends: { b: { apiKey: "b-key-0123456789abcde", video: { fps: 60 } } } }))
      .toThrow(/backends\.b\.video\.fps: 60 fps is above the ceiling videoLimits\.fps = 30/);
    expect(() => parseConfig({ backends: { b: { apiKey: "b-key-0123456789abcde", video: { width: 1280, height: 720 }, videoLimits: { width: 960 } } } }))
      .toThrow(/backends\.b\.video\.width: 1280 px is above the ceiling backends\.b\.videoLimits\.width = 960/);
    // the global defaults under a backend's own lower ceiling
    expect(() => parseConfig({ backends: { b: { apiKey: "b-key-0123456789abcde", videoLimits: { bitrateKbps: 1000 } } } }))
      .toThrow(/backends\.b\.video\.bitrateKbps: 2500 kbit\/s is above the ceiling backends\.b\.videoLimits\.bitrateKbps = 1000/);
  });

  test("the global video default above the global ceiling is refused once", () => {
    let err: unknown;
    try { parseConfig({ video: { width: 2560, height: 1440 }, backends: { b: { apiKey: "b-key-0123456789abcde" } } }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(MeetrecError);
    expect((err as MeetrecError).details?.issues).toEqual([
      "video.width: 2560 px is above the ceiling videoLimits.width = 1920; lower the setting or raise the ceiling",
      "video.height: 1440 px is above the ceiling videoLimits.height = 1080; lower the setting or raise the ceiling",
    ]);
  });

  test("a Talk backend records at Talk's 1920×1080 unless its video says otherwise: checked against its ceiling", () => {
    expect(() => parseConfig({ backends: { cloud: { talk: TALK, videoLimits: { width: 1280, height: 720 } } } }))
      .toThrow(/backends\.cloud\.video\.width: 1920 px \(Talk's default frame size; set this key to record smaller\) is above the ceiling backends\.cloud\.videoLimits\.width = 1280/);
    expect(parseConfig({ backends: { cloud: { talk: TALK, video: { width: 1280, height: 720 }, videoLimits: { width: 1280, height: 720 } } } }).backends.cloud.video).toEqual({ width: 1280, height: 720 });
    expect(() => parseConfig({ videoLimits: { width: 1280 }, talk: { allowAll: true, secret: "common-secret-0123456789" } }))
      .toThrow(/videoLimits\.width: 1920 px \(talk\.allowAll/);
  });
});

describe("server.conf import", () => {
  test("a frame size above the default ceiling in server.conf comes with a ceiling that allows it", () => {
    const conf = (w: number, h: number) => `[backend]\nbackends = cloud\nsecret = common-secret-0123456789\nvideowidth = ${w}\nvideoheight = ${h}\n\n[cloud]\nurl = https://cloud.example.com/\n`;
    const big = parseConfig(importNextcloudConf(conf(2560, 1440)).config);
    expect(big.backends.cloud.video).toEqual({ width: 2560, height: 1440 });
    expect(videoLimitsOf(big, "cloud")).toMatchObject({ width: 2560, height: 1440 });
    const usual = parseConfig(importNextcloudConf(conf(1920, 1080)).config);
    expect(usual.backends.cloud.videoLimits).toBeUndefined();
  });
});

describe("resolving a request against the ceilings", () => {
  const cfg = parseConfig({
    backends: {
      open: { apiKey: "open-key-0123456789abc" },
      small: { apiKey: "small-key-0123456789ab", video: { width: 640, height: 360 }, videoLimits: { width: 960, height: 540, fps: 15 }, },
    },
    video: { fps: 15 },
  });
  const req = (video?: object) => ({ url: "https://meet.example.com/r", ...(video ? { video } : {}) });

  test("within the ceilings: the merged settings", () => {
    expect(resolveOptions(cfg, "open", req({ width: 1920, height: 1080, fps: 30, bitrateKbps: 8000 })).video).toEqual({ width: 1920, height: 1080, fps: 30, bitrateKbps: 8000 });
    expect(resolveOptions(cfg, "small", req({ fps: 15 })).video).toEqual({ width: 640, height: 360, fps: 15, bitrateKbps: 2500 });
  });

  test("above a ceiling: validation_failed naming each field and its limit", () => {
    let err: MeetrecError | undefined;
    try { resolveOptions(cfg, "open", req({ width: 3840, height: 2160, fps: 60, bitrateKbps: 50000 })); } catch (e) { err = e as MeetrecError; }
    expect(err).toMatchObject({ code: "validation_failed", status: 422, details: { field: "video.width" } });
    expect((err!.details!.errors as { field: string }[]).map((e) => e.field)).toEqual(["video.width", "video.height", "video.fps", "video.bitrateKbps"]);
    expect(err!.message).toContain("video.width 3840 px is above backend open's limit of 1920 px");
    expect(err!.message).toContain("video.bitrateKbps 50000 kbit/s is above backend open's limit of 8000 kbit/s");
    // the backend's own, lower ceiling; only what exceeds it is named
    expect(() => resolveOptions(cfg, "small", req({ width: 1280, height: 540 }))).toThrow(/^video\.width 1280 px is above backend small's limit of 960 px; ask for at most/);
  });
});
