import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { EmbeddedHost } from "../../src/hosts/index.js";
import { parseConfig } from "../../src/config/index.js";
import { talkCallback } from "../../src/platforms/talk/index.js";
import type { Recording } from "../../src/store/index.js";
import { checksumMatches, internalSecretFor, sameSignalingServer, talkChecksum } from "../../src/platforms/talk/index.js";
import { createLogger } from "../../src/util/log.js";
import { scratchDir } from "../helpers/scratch.js";

describe("Talk rules", () => {
  test("checksum: hex HMAC-SHA256(secret, random ‖ body), compared case-insensitively in constant time", () => {
    // RFC 4231 test case 2 (key "Jefe", data "what do ya want for nothing?") split into random ‖ body
    expect(talkChecksum("Jefe", "what do ya want ", "for nothing?")).toBe("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    expect(checksumMatches("Jefe", "what do ya want ", "for nothing?", "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843")).toBe(true);
    expect(checksumMatches("Jefe", "what do ya want ", "for nothing!", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")).toBe(false);
    expect(checksumMatches("Jefe", "x", "y", "short")).toBe(false);
  });

  test("signaling servers: http/https and ws/wss forms and trailing slashes name the same server", () => {
    expect(sameSignalingServer("https://hpb.example.com/", "wss://hpb.example.com")).toBe(true);
    expect(sameSignalingServer("http://hpb.example.com:8080/standalone-signaling/", "ws://hpb.example.com:8080/standalone-signaling")).toBe(true);
    expect(sameSignalingServer("https://hpb.example.com/", "https://other.example.com/")).toBe(false);
    expect(sameSignalingServer("https://hpb.example.com/a", "https://hpb.example.com/b")).toBe(false);
    const cfg = parseConfig({ talk: { signaling: { internalSecret: "common", servers: [{ url: "https://hpb1.example.com/", internalSecret: "one" }] } } });
    expect(internalSecretFor(cfg, "wss://hpb1.example.com")).toBe("one");
    expect(internalSecretFor(cfg, "wss://hpb2.example.com")).toBe("common");
  });

  test("allowAll: any Talk URL maps to talk-any with the common secret; without it, unknown URLs are refused", async () => {
    const dir = scratchDir("meetrec-talk-");
    const open = await EmbeddedHost.start(parseConfig({ dataDir: join(dir, "a"), talk: { allowAll: true, secret: "common-secret-0123456789" }, backends: { cloud: { talk: { url: "https://cloud.example.com/", secret: "cloud-secret-0123456789" } } } }), createLogger("silent"));
    expect(open.talk.backendFor("https://cloud.example.com")).toMatchObject({ backend: "cloud", secret: "cloud-secret-0123456789" });
    expect(open.talk.backendFor("https://anything.example.org/nc/")).toMatchObject({ backend: "talk-any", secret: "common-secret-0123456789" });
    await open.close();
    const closed = await EmbeddedHost.start(parseConfig({ dataDir: join(dir, "b"), backends: { cloud: { talk: { url: "https://cloud.example.com/nc/", secret: "cloud-secret-0123456789" } } } }), createLogger("silent"));
    expect(closed.talk.backendFor("https://cloud.example.com/nc")).toMatchObject({ backend: "cloud" });
    expect(closed.talk.backendFor("https://anything.example.org/")).toBeUndefined();
    await closed.close();
    expect(() => parseConfig({ talk: { allowAll: true } })).toThrow(/talk\.secret: allowAll needs/);
  });

  test("which callback a status change sends", () => {
    const rec = (status: Recording["status"], stopActor?: unknown) => ({ status, metadata: { talk: { token: "t1", backendUrl: "https://c", owner: "o", actor: { type: "users", id: "a" }, status: 2, stopActor } } }) as unknown as Recording;
    expect(talkCallback(rec("recording"), "starting")).toEqual({ type: "started", started: { token: "t1", status: 2, actor: { type: "users", id: "a" } } });
    expect(talkCallback(rec("stopping", { type: "users", id: "b" }), "recording")).toEqual({ type: "stopped", stopped: { token: "t1", actor: { type: "users", id: "b" } } });
    expect(talkCallback(rec("aborted"), "starting")).toEqual({ type: "stopped", stopped: { token: "t1" } });
    expect(talkCallback(rec("failed"), "starting")).toEqual({ type: "failed", failed: { token: "t1" } });
    expect(talkCallback(rec("failed"), "recording")).toEqual({ type: "failed", failed: { token: "t1" } });
    expect(talkCallback(rec("failed"), "finalizing")).toBeUndefined(); // Talk was already told "stopped"
    expect(talkCallback(rec("finalizing"), "stopping")).toBeUndefined();
    expect(talkCallback({ status: "recording", metadata: {} } as unknown as Recording, "starting")).toBeUndefined();
  });
});
