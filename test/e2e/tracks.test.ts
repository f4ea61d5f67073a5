/**
 * Per-participant audio (`tracks: true`, issue 12) on the real Janus meeting: each publisher's
 * track file holds only that publisher's tone (the other's ≥ 30 dB lower); bob muted at a known
 * moment drops out of his track file at the same place as in the mixed file once the track's
 * `offsetMs` is applied (± 50 ms); Chromium and Firefox. A pause ends the files and the resume
 * begins new ones, placed in the second period. And a server killed (kill -9)
 * mid-recording leaves track files that still become playable Ogg/Opus, up to ≤ 2 s before the kill.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DEFAULT_PUBLISHERS } from "../../dev/fake-media.js";
import { audioSamples, goertzel, probe } from "../../dev/media-check.js";
import { startMeeting, type Meeting } from "../../dev/meeting.js";
import { startServer, type TestServer } from "../../dev/server.js";

const TERMINAL = ["completed", "failed", "aborted"];
const [alice, bob] = DEFAULT_PUBLISHERS;
const RATE = 16000;
let meeting: Meeting;
let server: TestServer;

beforeAll(async () => {
  meeting = await startMeeting();
  server = await startServer({ netns: meeting.netns, egress: meeting.egress, startWhen: "media" });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await meeting?.stop();
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Power of `hz` in 10 ms windows of `x`. */
function energy(x: Float32Array, hz: number): number[] {
  const n = RATE / 100;
  const out: number[] = [];
  for (let i = 0; i + n <= x.length; i += n) out.push(goertzel(x.subarray(i, i + n), RATE, hz));
  return out;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? 0;

/**
 * Where tone `hz` stops in `x`, s: searched from `fromS` to `toS`, the first 10 ms window 20 dB
 * under the tone's level in the second before `fromS` that stays that low for 200 ms.
 * (20 dB, not more: in the mixed file the other publisher's 440 Hz leaks into a 10 ms window's
 * 1000 Hz bin.)
 */
function dropAt(x: Float32Array, hz: number, fromS: number, toS: number): number {
  const e = energy(x, hz);
  const i0 = Math.max(0, Math.round(fromS * 100));
  const ref = median(e.slice(Math.max(0, i0 - 100), i0));
  expect(ref, `tone ${hz} Hz sounds before ${fromS.toFixed(2)} s`).toBeGreaterThan(0);
  for (let i = i0; i < Math.min(e.length - 20, Math.round(toS * 100)); i++) {
    if (e.slice(i, i + 20).every((v) => v < ref / 100)) return i / 100;
  }
  const lows = e.slice(i0, Math.round(toS * 100)).map((v) => (10 * Math.log10(v / ref + 1e-12)).toFixed(0));
  throw new Error(`tone ${hz} Hz does not stop between ${fromS.toFixed(2)} and ${toS.toFixed(2)} s (dB vs before, per 10 ms: ${lows.join(" ")})`);
}

/** Own tone over the other's, dB, in 1 s windows of `x` from `fromS` to `toS` (the windows where the own tone sounds). */
function separationDb(x: Float32Array, own: number, other: number, fromS: number, toS: number): number[] {
  const out: number[] = [];
  for (let t = fromS; t + 1 <= toS; t += 1) {
    const w = x.subarray(Math.round(t * RATE), Math.round((t + 1) * RATE));
    out.push(10 * Math.log10(goertzel(w, RATE, own) / (goertzel(w, RATE, other) + 1e-30)));
  }
  return out;
}

/**
 * Where bob's tone stops in his track `x` (muted at wall clock `mutedAt`), moved by the track's
 * `offsetMs`, less where it stops in the mixed file `mx`, ms.
 */
function muteSkewMs(label: string, mx: Float32Array, x: Float32Array, track: { offsetMs: number; startedAt: string }, mutedAt: number): number {
  const inTrackApprox = (mutedAt - Date.parse(track.startedAt)) / 1000;
  const inTrack = dropAt(x, bob.toneHz, inTrackApprox - 1, inTrackApprox + 1.5);
  const near = inTrack + track.offsetMs / 1000;
  const inMixed = dropAt(mx, bob.toneHz, near - 1, near + 1.5);
  const skewMs = Math.round(inTrack * 1000 + track.offsetMs - inMixed * 1000);
  console.log(label, "mute in mixed", inMixed, "in track", inTrack, "offsetMs", track.offsetMs, "skew ms", skewMs);
  return skewMs;
}

async function download(s: TestServer, path: string, file: string): Promise<string> {
  const res = await s.api("GET", path);
  expect(res.status, `${path}: ${res.status === 200 ? "" : res.body.toString()}`).toBe(200);
  const out = join(s.dir, file);
  writeFileSync(out, res.body);
  return out;
}

/** Which of `tracks` carries `hz` loudest, by its decoded samples. */
function trackOf(samples: Float32Array[], hz: number): number {
  const level = samples.map((x) => energy(x, hz).reduce((a, b) => a + b, 0));
  return level.indexOf(Math.max(...level));
}

describe("per-participant tracks", () => {
  for (const browser of ["chromium", "firefox"] as const) {
    test(`${browser}: one Ogg/Opus file per publisher, each holding only its tone, aligned with the mixed file by its offset (± 50 ms)`, async () => {
      const { id } = (await server.api("POST", "/v1/recordings", {
        url: meeting.viewerUrl, join: meeting.joinSteps(), browser, maxDurationSeconds: 120, tracks: true,
        video: { width: 640, height: 360, fps: 15 },
      })).json();
      try {
        expect((await server.waitFor(id, (v) => v.status === "recording" && v.participants?.now === 2, 60_000)).status).toBe("recording");
        await pause(5000);
        await meeting.mute(bob.name, true);
        const mutedAt = Date.now();
        await pause(3000);
        await meeting.mute(bob.name, false);
        await pause(2500);
        await server.api("POST", `/v1/recordings/${id}/stop`);
        const rec = await server.waitFor(id, (v) => TERMINAL.includes(v.status), 60_000);
        expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
        expect(rec.tracks).toBe(true);
        const tracks = rec.file.tracks;
        expect(tracks, "one track file per publisher's audio track").toHaveLength(2);
        expect(rec.events.find((e: any) => e.type === "tracks_finalized")?.data).toEqual({ count: 2, skipped: 0 });
        for (const [i, t] of tracks.entries()) {
          expect(t.name).toBe(`${rec.file.name}.track-${i + 1}.ogg`);
          expect(t.url).toMatch(new RegExp(`/v1/recordings/${id}/tracks/${i + 1}$`));
        }
        const mixed = await download(server, `/v1/recordings/${id}/file`, `${browser}.mp4`);
        const files = await Promise.all(tracks.map((_t: any, i: number) => download(server, `/v1/recordings/${id}/tracks/${i + 1}`, `${browser}-${i + 1}.ogg`)));
        for (const [i, f] of files.entries()) {
          const p = probe(f);
          expect(p.audio?.codec, `${tracks[i].name}: Opus`).toBe("opus");
          expect(p.video).toBeUndefined();
          expect(Math.abs(p.durationS - tracks[i].durationSeconds)).toBeLessThan(0.1);
        }
        expect((await server.api("GET", `/v1/recordings/${id}/tracks/3`)).status).toBe(404);
        const samples = files.map((f) => audioSamples(f, RATE));
        const ai = trackOf(samples, alice.toneHz);
        const bi = trackOf(samples, bob.toneHz);
        expect(ai, "alice and bob in different files").not.toBe(bi);
        expect(new Set(tracks.map((t: any) => t.source)).size).toBe(2);
        // (1) each file holds its publisher's tone only: the other's ≥ 30 dB lower, in every
        // second in which the owner sounds (bob: before his mute).
        const bobMuteInTrack = (mutedAt - Date.parse(tracks[bi].startedAt)) / 1000;
        const aliceSep = separationDb(samples[ai], alice.toneHz, bob.toneHz, 0.5, samples[ai].length / RATE - 0.5);
        const bobSep = separationDb(samples[bi], bob.toneHz, alice.toneHz, 0.5, bobMuteInTrack - 1);
        console.log(browser, "separation dB alice", aliceSep.map((v) => v.toFixed(0)).join(" "), "bob", bobSep.map((v) => v.toFixed(0)).join(" "));
        expect(aliceSep.length).toBeGreaterThanOrEqual(8);
        expect(bobSep.length).toBeGreaterThanOrEqual(3);
        for (const v of [...aliceSep, ...bobSep]) expect(v).toBeGreaterThanOrEqual(30);
        // (2) bob's mute: where his tone stops in his file, moved by its offset, is where it stops in the mixed file.
        expect(Math.abs(muteSkewMs(browser, audioSamples(mixed, RATE), samples[bi], tracks[bi], mutedAt)), "bob's mute in his track (+ offsetMs) vs in the mixed file").toBeLessThanOrEqual(50);
        // alice's track runs the whole recording beside the file
        expect(tracks[ai].durationSeconds).toBeGreaterThan(rec.file.durationSeconds - 1.5);
      } catch (e) {
        console.error(server.log().split("\n").filter((l) => l.includes(id) && !l.includes("\"level\":20")).slice(-20).join("\n"));
        throw e;
      }
    });
  }

  for (const browser of ["chromium", "firefox"] as const) {
    test(`${browser}: a pause ends the tracks' files and the resume begins new ones, placed in the second period (± 50 ms)`, async () => {
      const { id } = (await server.api("POST", "/v1/recordings", {
        url: meeting.viewerUrl, join: meeting.joinSteps(), browser, maxDurationSeconds: 120, tracks: true,
        video: { width: 640, height: 360, fps: 15 },
      })).json();
      try {
        expect((await server.waitFor(id, (v) => v.status === "recording" && v.participants?.now === 2, 60_000)).status).toBe("recording");
        await pause(3000);
        expect((await server.api("POST", `/v1/recordings/${id}/pause`)).status).toBe(202);
        await server.waitFor(id, (v) => v.events.some((e: any) => e.type === "paused"), 10_000);
        await pause(2000);
        expect((await server.api("POST", `/v1/recordings/${id}/resume`)).status).toBe(202);
        await server.waitFor(id, (v) => v.periods === 2, 10_000);
        await pause(3500);
        await meeting.mute(bob.name, true);
        const mutedAt = Date.now();
        await pause(2000);
        await meeting.mute(bob.name, false);
        await server.api("POST", `/v1/recordings/${id}/stop`);
        const rec = await server.waitFor(id, (v) => TERMINAL.includes(v.status), 60_000);
        expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
        const tracks = rec.file.tracks;
        expect(tracks, "two files per publisher: before the pause and after it").toHaveLength(4);
        const paused = Date.parse(rec.events.find((e: any) => e.type === "paused").at);
        const before = tracks.filter((t: any) => Date.parse(t.startedAt) < paused);
        const after = tracks.filter((t: any) => Date.parse(t.startedAt) > paused);
        expect([before.length, after.length]).toEqual([2, 2]);
        // nothing of the pause in a track: each first-run file ends by the pause
        for (const t of before) expect(Date.parse(t.startedAt) + t.durationSeconds * 1000, `${t.name} ends by the pause`).toBeLessThan(paused + 1000);
        const mixed = await download(server, `/v1/recordings/${id}/file`, "paused.mp4");
        const samples = await Promise.all(after.map(async (t: any) => audioSamples(await download(server, `/v1/recordings/${id}/tracks/${/track-(\d+)/.exec(t.name)![1]}`, t.name), RATE)));
        const bi = trackOf(samples, bob.toneHz);
        expect(after[bi].offsetMs, "the second run's track lies after the first period in the file").toBeGreaterThan(2500);
        expect(Math.abs(muteSkewMs(`${browser}, after a pause`, audioSamples(mixed, RATE), samples[bi], after[bi], mutedAt)), "bob's mute in his second-period track (+ offsetMs) vs in the mixed file").toBeLessThanOrEqual(50);
      } catch (e) {
        console.error(server.log().split("\n").filter((l) => l.includes(id) && !l.includes("\"level\":20")).slice(-20).join("\n"));
        throw e;
      }
    });
  }

  for (const browser of ["chromium", "firefox"] as const) {
    test(`${browser}: a server killed mid-recording (kill -9) leaves track files that become playable up to ≤ 2 s before the kill`, async () => {
      const s1 = await startServer({ netns: meeting.netns, egress: meeting.egress, startWhen: "media" });
      let s2: TestServer | undefined;
      try {
        const { id } = (await s1.api("POST", "/v1/recordings", {
          url: meeting.viewerUrl, join: meeting.joinSteps(), browser, maxDurationSeconds: 120, tracks: true,
          video: { width: 480, height: 270, fps: 15 },
        })).json();
        expect((await s1.waitFor(id, (v) => v.status === "recording" && v.participants?.now === 2, 60_000)).status).toBe("recording");
        await pause(6000);
        const killedAt = Date.now();
        s1.child.kill("SIGKILL");
        await new Promise((r) => s1.child.once("exit", r));
        // The restarted server resumes the recording (a new period, new track files), then it is stopped.
        s2 = await startServer({ netns: meeting.netns, egress: meeting.egress, startWhen: "media", env: { MEETREC_DATA_DIR: s1.dataDir } });
        await s2.waitFor(id, (v) => v.status === "recording" && v.periods === 2 && v.participants?.now === 2, 60_000);
        await pause(3000);
        await s2.api("POST", `/v1/recordings/${id}/stop`);
        const rec = await s2.waitFor(id, (v) => TERMINAL.includes(v.status), 60_000);
        expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
        const p2 = Date.parse(rec.events.find((e: any) => e.type === "period_started" && e.data.period === 2).at);
        const before = rec.file.tracks.filter((t: any) => Date.parse(t.startedAt) < killedAt);
        const after = rec.file.tracks.filter((t: any) => Date.parse(t.startedAt) >= p2 - 1000);
        expect(before, "both publishers' tracks of the killed run").toHaveLength(2);
        expect(after, "both publishers' tracks of the resumed run").toHaveLength(2);
        for (const t of before) {
          const n = Number(/track-(\d+)\.ogg$/.exec(t.name)![1]);
          const f = await download(s2, `/v1/recordings/${id}/tracks/${n}`, `killed-${n}.ogg`);
          const x = audioSamples(f, RATE);
          const endsAt = Date.parse(t.startedAt) + (x.length / RATE) * 1000;
          console.log("killed run track", n, "ends", killedAt - endsAt, "ms before the kill");
          expect(killedAt - endsAt, `${t.name} plays up to ≤ 2 s before the kill`).toBeLessThanOrEqual(2000);
          // and it sounds to its end: one of the tones in its last second
          const last = x.subarray(x.length - RATE);
          const db = Math.max(...[alice.toneHz, bob.toneHz].map((hz) => 10 * Math.log10(goertzel(last, RATE, hz) / (goertzel(last, RATE, 2300) + 1e-30))));
          expect(db, `${t.name}: a tone in its last second`).toBeGreaterThan(20);
        }
      } catch (e) {
        console.error((s2 ?? s1).log().split("\n").filter((l) => !l.includes("\"level\":20")).slice(-30).join("\n"));
        throw e;
      } finally {
        await s2?.stop();
        await s1.stop();
      }
    });
  }
});
