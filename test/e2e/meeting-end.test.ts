/**
 * The recorder knows when the meeting is over (issue 12): on the real Janus meeting, publishers
 * leave and come back. One leaving and coming back is no end (the count goes 2 → 1 → 2); both
 * leaving ends the recording `completed`/`meeting_empty` within `emptySeconds` + 5 s, with both
 * publishers in the file up to their leaving, placed by the test's own clock. Chromium and Firefox.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { DEFAULT_PUBLISHERS } from "../../dev/fake-media.js";
import { checkMeeting, checkTiles, checkTone, decodeFrames, probe } from "../../dev/media-check.js";
import { startMeeting, type Meeting } from "../../dev/meeting.js";
import { startServer, type TestServer } from "../../dev/server.js";

const TERMINAL = ["completed", "failed", "aborted"];
const [alice, bob] = DEFAULT_PUBLISHERS;
const EMPTY_S = 6;
let meeting: Meeting;
let server: TestServer;

// A meeting per test: after publishers left and joined again, a Firefox viewer joining later
// never gets their pictures decoded (the demo's #curres never shows; Chromium does), so each
// browser gets the room fresh.
beforeEach(async () => {
  meeting = await startMeeting();
  server = await startServer({ netns: meeting.netns, egress: meeting.egress });
}, 120_000);

afterEach(async () => {
  await server?.stop();
  await meeting?.stop();
});

/** Polls the recording's view until `until` holds (or it ended), adding each new participant count seen to `counts`. */
function watch(id: string, counts: number[], until: (v: any) => boolean, timeoutMs = 30_000): Promise<any> {
  return server.waitFor(id, (v) => {
    const n = v.participants?.now;
    if (typeof n === "number" && counts.at(-1) !== n) counts.push(n);
    return until(v) || TERMINAL.includes(v.status);
  }, timeoutMs);
}

describe("the meeting is over when everyone left (autoStop.emptySeconds)", () => {
  for (const browser of ["chromium", "firefox"] as const) {
    test(`${browser}: one leaving and coming back is no end; both leaving ends it meeting_empty`, async () => {
      const { id } = (await server.api("POST", "/v1/recordings", {
        url: meeting.viewerUrl, join: meeting.joinSteps(), browser, maxDurationSeconds: 120,
        video: { width: 1024, height: 576, fps: 15 }, autoStop: { emptySeconds: EMPTY_S },
      })).json();
      try {
        const counts: number[] = [];
        expect((await watch(id, counts, (v) => v.status === "recording" && v.participants?.now === 2, 60_000)).status).toBe("recording");
        await new Promise((r) => setTimeout(r, 5000)); // both in the picture for a few seconds
        const bobLeftAt = Date.now();
        await meeting.leave(bob.name);
        expect((await watch(id, counts, (v) => v.participants?.now === 1)).status).toBe("recording");
        await meeting.join(bob);
        const back = await watch(id, counts, (v) => v.participants?.now === 2);
        expect(back.status, "one participant leaving and coming back is no end").toBe("recording");
        expect(counts.slice(counts.indexOf(2))).toEqual([2, 1, 2]);
        expect(back.participants.peak).toBe(2);
        const rejoinedAt = Date.now();
        await new Promise((r) => setTimeout(r, 6000)); // both in the meeting again for a few seconds
        const leftAt = Date.now();
        await Promise.all([meeting.leave(alice.name), meeting.leave(bob.name)]);
        const rec = await server.waitFor(id, (v) => TERMINAL.includes(v.status), 60_000);
        expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
        expect(rec.endReason).toBe("meeting_empty");
        const ev = rec.events.find((e: any) => e.type === "meeting_empty");
        expect(ev.data.emptySeconds).toBe(EMPTY_S);
        expect(Date.parse(ev.at) - leftAt, "stopped after everyone left").toBeLessThanOrEqual((EMPTY_S + 5) * 1000);
        expect(Date.parse(ev.at) - leftAt, "not before the window").toBeGreaterThanOrEqual(EMPTY_S * 1000);
        expect(rec.events.filter((e: any) => e.type === "period_started"), "one encoder run").toHaveLength(1);
        // The file from the test's clock: its time 0 is when the (only) period started.
        const file = join(server.dir, `${browser}-empty.mp4`);
        writeFileSync(file, (await server.api("GET", `/v1/recordings/${id}/file`)).body);
        const t0 = Date.parse(rec.events.find((e: any) => e.type === "period_started").at);
        const at = (wallMs: number) => (wallMs - t0) / 1000;
        expect(probe(file).durationS, "the file runs until the meeting was found empty").toBeGreaterThanOrEqual(at(Date.parse(ev.at)) - 1);
        // Both publishers on screen and sounding until bob left ...
        checkMeeting(file, [alice, bob], { spans: [{ from: 1, to: at(bobLeftAt) - 1 }] });
        // ... and both sounding after his return, alice's tile moving. (The Janus demo page keeps a
        // departed publisher's tile frozen on its last frame and gives a returning one a new tile
        // below the fold, so bob's picture after his return is not judged.)
        const back2 = [{ from: at(rejoinedAt) + 2, to: at(leftAt) - 1 }];
        checkTiles(decodeFrames(file), [alice], { spans: back2 });
        for (const p of [alice, bob]) checkTone(file, p.toneHz, { spans: back2, label: `${p.name}'s tone after bob's return` });
      } catch (e) {
        console.error(server.log().split("\n").filter((l) => l.includes(id) && !l.includes("\"level\":20")).slice(-20).join("\n"));
        throw e;
      }
    });
  }
});
