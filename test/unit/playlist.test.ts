import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { encoderArgs, parsePlaylist, JoinSteps } from "../../src/capture/index.js";
import { chromiumArgs } from "../../src/capture/browser.js";
import { toHlsPlaylist, type Manifest } from "../../src/media/index.js";
import { parseConfig } from "../../src/config/index.js";

describe("encoder playlist parsing (RFC 8216 EXTINF)", () => {
  test("closed segments with their durations; a line caught mid-write is not counted", () => {
    const text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000000,\n000001.m4s\n#EXTINF:1.966667,\n000002.m4s\n#EXTINF:2.0,\n00000";
    expect(parsePlaylist(text)).toEqual([{ uri: "000001.m4s", durationMs: 2000 }, { uri: "000002.m4s", durationMs: 1967 }]);
    expect(parsePlaylist("")).toEqual([]);
  });
});

describe("live playlist from the manifest", () => {
  const m: Manifest = {
    version: 1, recordingId: "r", mode: "video", segmentSeconds: 2, updatedAt: "",
    periods: [
      { index: 1, reason: "start", startedAt: "", init: "p1/init.mp4", segments: [{ seq: 1, file: "p1/000001.m4s", startMs: 0, durationMs: 2000, bytes: 1, sha256: "" }] },
      { index: 2, reason: "encoder_restart", startedAt: "", segments: [] },
      { index: 3, reason: "encoder_restart", startedAt: "", init: "p3/init.mp4", segments: [{ seq: 1, file: "p3/000001.m4s", startMs: 2000, durationMs: 2500, bytes: 1, sha256: "" }] },
    ],
  };
  test("one EXT-X-MAP per period, DISCONTINUITY between them, empty periods skipped", () => {
    const text = toHlsPlaylist(m, false, (f) => `media/${f}`);
    expect(text.split("\n")).toEqual([
      "#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:3", "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-INDEPENDENT-SEGMENTS",
      "#EXT-X-MAP:URI=\"media/p1/init.mp4\"", "#EXTINF:2.000,", "media/p1/000001.m4s",
      "#EXT-X-DISCONTINUITY", "#EXT-X-MAP:URI=\"media/p3/init.mp4\"", "#EXTINF:2.500,", "media/p3/000001.m4s", "",
    ]);
    expect(toHlsPlaylist(m, true)).toMatch(/#EXT-X-PLAYLIST-TYPE:VOD[\s\S]*#EXT-X-ENDLIST\n$/);
  });
});

describe("encoder arguments", () => {
  const base = { display: ":5", width: 1280, height: 720, fps: 30, bitrateKbps: 2500, audioBitrateKbps: 128, monitor: "s.monitor", pulseServer: "unix:/x", segmentSeconds: 2, x264Preset: "veryfast", dir: "/d" };
  test("video: x11grab + pulse, keyframe every segment, constant frame rate, fMP4 segments", () => {
    const a = encoderArgs({ ...base, mode: "video" }, 1_000_000);
    const at = (flag: string) => a[a.indexOf(flag) + 1];
    expect(a).toContain("x11grab");
    expect(at("-video_size")).toBe("1280x720");
    expect(at("-g")).toBe("60");
    expect(at("-keyint_min")).toBe("60");
    expect(at("-r")).toBe("30");
    expect(at("-hls_segment_type")).toBe("fmp4");
    expect(a).not.toContain("-force_key_frames");
    expect(at("-hls_time")).toBe("2");
    expect(at("-filter:v")).toBe("setpts=PTS-1000000/(TB*1000000)");
    expect(a.at(-1)).toBe("/d/live.m3u8");
  });
  test("video: a short first segment (firstSegmentSeconds): a keyframe forced at its end, the muxer cutting at every keyframe that long on; audio keeps the segment duration", () => {
    const a = encoderArgs({ ...base, mode: "video", firstSegmentSeconds: 0.5 }, 1_000_000);
    const at = (flag: string) => a[a.indexOf(flag) + 1];
    expect(at("-force_key_frames")).toBe("expr:eq(n,15)");
    expect(at("-hls_time")).toBe("0.5");
    expect(at("-g")).toBe("60");
    const same = encoderArgs({ ...base, mode: "video", firstSegmentSeconds: 2 }, 1_000_000);
    expect(same).not.toContain("-force_key_frames");
    const audio = encoderArgs({ ...base, mode: "audio", firstSegmentSeconds: 0.5 }, 1_000_000);
    expect(audio[audio.indexOf("-hls_time") + 1]).toBe("2");
  });
  test("video: frame slots — after a burst of grabs (a stall caught up) every later frame is back within −0.5…+0.8 slot of its grab time (ffmpeg's own rate conversion, the encoder's flags)", () => {
    // Synthetic grab stamps through ffmpeg's rate conversion with the encoder's flags: frame N
    // (its index painted as its luma) is grabbed at (N + phase ± jitter) / fps; frames 100–102
    // are grabbed at once, late, at 102.25. Each output frame's slot is read back against its
    // grab time. With ffmpeg's default drop threshold every frame after the burst sat 1–2 slots late.
    const a = encoderArgs({ ...base, mode: "video", fps: 15 }, 1_000_000);
    const flags = ["-frame_drop_threshold", a[a.indexOf("-frame_drop_threshold") + 1], "-r", "15", "-fps_mode", a[a.indexOf("-fps_mode") + 1]];
    expect(flags.slice(-2)).toEqual(["-fps_mode", "cfr"]);
    const dir = mkdtempSync(join(tmpdir(), "meetrec-slots-"));
    try {
      for (const phase of [0.05, 0.35, 0.65, 0.95]) {
        const jitter = "0.2*(mod(abs(sin(N*12.9898))*43758.5453\\,1)-0.5)";
        const out = join(dir, `${phase}.nut`);
        execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "color=black:s=16x16:rate=15:d=14,format=gray,geq=lum=N",
          "-vf", `settb=1/90000,setpts=(N+${phase}+between(N\\,100\\,102)*(102.25-N)+${jitter})/(15*TB)`, "-copyts", ...flags, "-c:v", "rawvideo", out]);
        const slots = execFileSync("ffprobe", ["-v", "error", "-select_streams", "v", "-show_entries", "frame=pts_time", "-of", "csv=p=0", out]).toString().trim().split("\n").map((x) => Math.round(Number(x) * 15));
        const luma = execFileSync("ffmpeg", ["-v", "error", "-i", out, "-f", "rawvideo", "-pix_fmt", "gray", "-"], { maxBuffer: 1 << 24 });
        const late: number[] = []; // slot − grab time, frames, for each grab first shown, after the burst
        let prev = -1;
        slots.forEach((slot, i) => {
          const n = luma[i * 256 + 136];
          if (n !== prev && n > 110) late.push(slot - (n + phase));
          prev = n;
        });
        expect(late.length, `phase ${phase}: frames shown after the burst`).toBeGreaterThan(90);
        expect(Math.min(...late), `phase ${phase}`).toBeGreaterThanOrEqual(-0.5 - 0.1);
        expect(Math.max(...late), `phase ${phase}`).toBeLessThanOrEqual(0.8 + 0.1);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test("video: the configured preset, then x264 options on top of it (the default's CABAC); none when empty", () => {
    const defaults = parseConfig({}).capture;
    expect([defaults.x264Preset, defaults.x264Params]).toEqual(["ultrafast", "cabac=1"]);
    const a = encoderArgs({ ...base, mode: "video", x264Preset: defaults.x264Preset, x264Params: defaults.x264Params });
    expect(a.slice(a.indexOf("-preset"), a.indexOf("-preset") + 6)).toEqual(["-preset", "ultrafast", "-tune", "zerolatency", "-x264-params", "cabac=1"]);
    expect(encoderArgs({ ...base, mode: "video", x264Params: "" })).not.toContain("-x264-params");
    expect(() => parseConfig({ capture: { x264Params: "cabac=1:--opts" } })).toThrow(/x264Params/);
    expect(parseConfig({ capture: { x264Params: "" } }).capture.x264Params).toBe("");
  });
  test("Chromium: the operator's switches come after meetrec's own; ones that would pass the egress proxy or meetrec's control are refused", () => {
    const own = chromiumArgs({ width: 1280, height: 720, proxyPort: 9 }, true);
    expect(chromiumArgs({ width: 1280, height: 720, proxyPort: 9, extraArgs: ["--disable-gpu"] }, true)).toEqual([...own, "--disable-gpu"]);
    expect(parseConfig({ capture: { chromiumArgs: ["--disable-gpu", "--force-device-scale-factor=1"] } }).capture.chromiumArgs).toHaveLength(2);
    for (const bad of ["--proxy-server=http://x:1", "--no-proxy-server", "--remote-debugging-port=9222", "--user-data-dir=/tmp/x", "--disable-web-security", "--host-resolver-rules=MAP * 1.2.3.4", "disable-gpu", "--Disable-GPU"]) {
      expect(() => parseConfig({ capture: { chromiumArgs: [bad] } }), bad).toThrow(/chromiumArgs/);
    }
  });
  test("audio only: no display grab", () => {
    const a = encoderArgs({ ...base, mode: "audio" });
    expect(a).not.toContain("x11grab");
    expect(a).not.toContain("libx264");
    expect(a).toContain("aac");
    expect(a).not.toContain("libopus");
  });
  test("audio only, Opus: libopus at 48 kHz into the same fMP4 segments", () => {
    const a = encoderArgs({ ...base, mode: "audio", audioCodec: "opus", audioBitrateKbps: 96 });
    const at = (flag: string) => a[a.indexOf(flag) + 1];
    expect(at("-c:a")).toBe("libopus");
    expect(at("-b:a")).toBe("96k");
    expect(at("-ar")).toBe("48000");
    expect(at("-hls_segment_type")).toBe("fmp4");
  });
});

describe("join steps", () => {
  test("accepted shapes", () => {
    expect(JoinSteps.safeParse([{ click: "#a" }, { fill: { selector: "#n", text: "rec" } }, { press: "Enter" }, { waitFor: "video", timeoutMs: 5000 }, { wait: 500 }, { goto: "https://m.example.com/x" }]).success).toBe(true);
  });
  test.each([[[{ click: "" }]], [[{ hover: "#a" }]], [[{ click: "#a", fill: { selector: "#b", text: "" } }]], [[{ wait: -1 }]], [[{ goto: "javascript:alert(1)" }]]])("refused: %j", (steps) => {
    expect(JoinSteps.safeParse(steps).success).toBe(false);
  });
});
