/**
 * The egress policy on its own: address classes in every spelling, `egress.allow`, named
 * origins, and meetrec's own requests (a Talk callback under `talk.allowAll` to a URL that came
 * with the request) against a real HTTP server on loopback that counts what reaches it.
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EgressPolicy, RequestGuard, addressRule, browserEgressFor } from "../../src/egress/index.js";
import { parseConfig } from "../../src/config/index.js";
import { sendTalkCallback } from "../../src/platforms/talk/index.js";

describe("address classes", () => {
  test.each([
    ["127.0.0.1", "loopback"], ["127.255.0.9", "loopback"], ["::1", "loopback"], ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"], ["64:ff9b::7f00:1", "loopback"], ["2002:7f00:1::", "loopback"],
    ["0.0.0.0", "unspecified"], ["::", "unspecified"],
    ["169.254.169.254", "cloud_metadata"], ["fd00:ec2::254", "cloud_metadata"], ["100.100.100.200", "cloud_metadata"],
    ["169.254.3.4", "link_local"], ["fe80::1", "link_local"],
    ["224.0.0.251", "multicast"], ["ff02::1", "multicast"], ["255.255.255.255", "broadcast"],
    ["10.1.2.3", "private"], ["172.16.0.1", "private"], ["192.168.1.1", "private"], ["100.64.0.1", "private"], ["fd12::1", "private"],
    ["::ffff:10.0.0.1", "private"], ["192.0.2.1", "reserved"], ["240.0.0.1", "reserved"],
  ])("%s is refused as %s", (address, rule) => {
    expect(addressRule(address)).toBe(rule);
  });

  test.each(["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])("%s is public", (address) => {
    expect(addressRule(address)).toBeUndefined();
  });

  test("URL spellings of loopback become the canonical address before they are judged", async () => {
    const p = new EgressPolicy();
    for (const url of ["http://2130706433/", "http://0x7f.1/", "http://0177.0.0.1/", "http://127.1/", "http://[::ffff:127.0.0.1]/", "http://[0:0:0:0:0:0:0:1]/"]) {
      const { refusal } = await p.check(new URL(url).hostname);
      expect(refusal?.rule, url).toBe("loopback");
    }
    expect((await p.check("localhost")).refusal?.rule).toBe("loopback");
    expect((await p.check("meet.localhost")).refusal?.rule).toBe("loopback");
  });
});

describe("egress.allow and named origins", () => {
  test("CIDRs, addresses, host names and *.suffix wildcards waive the rules; named origins are allowed on any address", () => {
    const p = new EgressPolicy(["10.0.0.0/8", "192.168.7.7", "meet.internal", "*.corp.example"]);
    expect(p.checkAddress("x", "10.9.9.9")).toBeUndefined();
    expect(p.checkAddress("x", "::ffff:10.9.9.9")).toBeUndefined();
    expect(p.checkAddress("x", "192.168.7.7")).toBeUndefined();
    expect(p.checkAddress("x", "192.168.7.8")?.rule).toBe("private");
    expect(p.checkAddress("meet.internal", "172.16.0.5")).toBeUndefined();
    expect(p.checkAddress("a.corp.example", "172.16.0.5")).toBeUndefined();
    expect(p.checkAddress("corp.example.evil", "172.16.0.5")?.rule).toBe("private");
    expect(p.checkAddress("x", "169.254.169.254")?.message).toContain("rule cloud_metadata");
    expect(p.checkAddress("x", "127.0.0.1", true)).toBeUndefined();
  });

  test("config refuses an entry that is none of those", () => {
    expect(() => parseConfig({ egress: { allow: ["10.0.0.0/33"] } })).toThrow(/egress\.allow\.0/);
    expect(() => parseConfig({ egress: { allow: ["http://x/"] } })).toThrow(/egress\.allow\.0/);
  });

  test("a backend's origins, its Talk URL and the signaling servers are named; a request origin list bounds what pages load", async () => {
    const cfg = parseConfig({
      talk: { signaling: { servers: [{ url: "wss://hpb.internal/spreed", internalSecret: "s" }] } },
      backends: {
        cloud: { talk: { url: "https://cloud.internal/", secret: "0123456789abcdef" }, allowedOrigins: ["https://cloud.internal"], allowedRequestOrigins: ["http://127.0.0.1:8088"] },
      },
    });
    const e = browserEgressFor(cfg, "cloud");
    expect(e.named.sort()).toEqual(["127.0.0.1:8088", "cloud.internal:443", "hpb.internal:443"]);
    const g = new RequestGuard(e);
    expect(g.requestRefusal("http://127.0.0.1:8088/janus")).toBeUndefined();
    expect(g.requestRefusal("https://cdn.example.com/x.js")?.rule).toBe("origin");
    expect(g.requestRefusal("file:///etc/passwd")?.rule).toBe("scheme");
    expect(g.requestRefusal("data:text/plain,hi")).toBeUndefined();
    expect((await g.navigationRefusal("https://evil.example/"))?.rule).toBe("origin");
    expect((await g.navigationRefusal("file:///etc/passwd"))?.rule).toBe("scheme");
    expect(await g.navigationRefusal("https://cloud.internal/call/x")).toBeUndefined();
    expect(g.connectionAllowed("cloud.internal:443")).toBe(true);
    expect(g.connectionAllowed("127.0.0.1:9999")).toBe(false);
  });
});

describe("meetrec's own requests", () => {
  let srv: Server;
  let port: number;
  let received = 0;
  beforeAll(async () => {
    srv = createServer((_req, res) => { received++; res.writeHead(200, { "content-type": "application/json" }).end("{}"); });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    port = (srv.address() as { port: number }).port;
  });
  afterAll(() => new Promise((r) => srv.close(r)));

  test("a Talk callback to a URL that came with the request (talk.allowAll) cannot reach loopback, by address or by name", async () => {
    const egress = new EgressPolicy();
    for (const host of ["127.0.0.1", "localhost"]) {
      await expect(sendTalkCallback("s".repeat(16), `http://${host}:${port}`, { type: "started" }, 5000, { egress, named: false })).rejects.toThrow(/rule loopback/);
    }
    expect(received).toBe(0);
    // The same instance named in the configuration, or allowed by egress.allow, is reached.
    await expect(sendTalkCallback("s".repeat(16), `http://127.0.0.1:${port}`, { type: "started" }, 5000, { egress, named: true })).resolves.toBe("HTTP 200");
    await expect(sendTalkCallback("s".repeat(16), `http://localhost:${port}`, { type: "started" }, 5000, { egress: new EgressPolicy(["127.0.0.0/8", "::1/128"]), named: false })).resolves.toBe("HTTP 200");
    expect(received).toBe(2);
  });
});
