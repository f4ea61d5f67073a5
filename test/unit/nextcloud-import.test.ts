import { execFileSync } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { parse } from "yaml";
import { configWarnings, importNextcloudConf, loadConfig, parseConfig } from "../../src/config/index.js";
import { REPO_ROOT } from "../../dev/meeting.js";
import { scratchDir } from "../helpers/scratch.js";

const SERVER_CONF = `[logs]
level = 30

[http]
listen = 127.0.0.1:8000

[app]
unknownkey = 1

[backend]
allowall = false
secret = common-secret-0123456789
backends = cloud1, cloud2
skipverify = false
maxmessagesize = 2048
videowidth = 1920
videoheight = 1080
directory = /tmp

[cloud1]
url = https://cloud1.example.com/
secret = cloud1-secret-0123456789
videowidth = 1280
videoheight = 720

[cloud2]
url = https://cloud2.example.com/nextcloud/
skipverify = true

[signaling]
internalsecret = common-internal
signalings = hpb1, hpb2

[hpb1]
url = https://signaling1.example.com/
internalsecret = hpb1-internal

[hpb2]
url = wss://signaling2.example.com/

[ffmpeg]
outputvideo = -c:v libvpx -deadline:v realtime -crf 10 -b:v 1M
extensionvideo = .webm

[recording]
browser = firefox

[stats]
allowed_ips = 127.0.0.1
`;

describe("importing a Talk recording server's server.conf", () => {
  test("backends, secrets, sizes and signaling servers carry over; the rest is named", () => {
    const r = importNextcloudConf(SERVER_CONF);
    const cfg = parseConfig(r.config);
    expect(cfg.listen).toBe("127.0.0.1:8000");
    expect(cfg.logLevel).toBe("warn");
    expect(cfg.backends.cloud1).toMatchObject({ talk: { url: "https://cloud1.example.com/", secret: "cloud1-secret-0123456789", maxMessageSize: 2048 }, video: { width: 1280, height: 720 } });
    expect(cfg.backends.cloud2).toMatchObject({ talk: { url: "https://cloud2.example.com/nextcloud/", secret: "common-secret-0123456789", skipVerify: true }, video: { width: 1920, height: 1080 } });
    expect(cfg.backends.cloud1.talk!.skipVerify).toBe(false);
    expect(cfg.backends.cloud1.dataDir).toBe("/tmp"); // [backend] directory, the common default
    expect(cfg.backends.cloud1.apiKey).toBeUndefined();
    expect(cfg.talk.allowAll).toBe(false);
    expect(cfg.talk.signaling).toEqual({ internalSecret: "common-internal", servers: [
      { url: "https://signaling1.example.com/", internalSecret: "hpb1-internal" },
      { url: "wss://signaling2.example.com/", internalSecret: "common-internal" },
    ] });
    const left = r.notCarried.join("\n");
    expect(left).not.toContain("skipverify");
    expect(left).not.toContain("directory");
    for (const k of ["[ffmpeg] outputvideo", "[ffmpeg] extensionvideo", "[recording] browser", "[stats] allowed_ips", "[app] unknownkey: unknown to meetrec"]) expect(left).toContain(k);
    expect(left).not.toContain("[cloud1] url");
  });

  test("a listed backend without a section is an error that names it", () => {
    expect(() => importNextcloudConf("[backend]\nbackends = ghost\nsecret = s0123456789abcdef\n")).toThrow(/backend "ghost".*\[ghost\]/);
  });

  test("meetrec config import-nextcloud writes a valid meetrec.yaml (0600) with the left-over keys as comments", () => {
    const dir = scratchDir("meetrec-import-");
    writeFileSync(join(dir, "server.conf"), SERVER_CONF);
    const out = join(dir, "meetrec.yaml");
    execFileSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/main.ts"), "config", "import-nextcloud", join(dir, "server.conf"), "-o", out], { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const text = readFileSync(out, "utf8");
    expect(text).toMatch(/^# meetrec configuration imported from .*server\.conf\n# Warnings:\n#   \[signaling\] internalsecret is 15 character\(s\)[^\n]*\n#   \[hpb1\] internalsecret is 13 character\(s\)[^\n]*\n# Not carried over:\n#   \[ffmpeg\] outputvideo/);
    expect(parseConfig(parse(text)).backends.cloud1.talk!.url).toBe("https://cloud1.example.com/");
    expect((statSync(out).mode & 0o777).toString(8)).toBe("600");
  });

  test("secrets shorter than 16 characters carry over (Talk and the signaling server take any), each with a warning that names its key", () => {
    const conf = `[backend]\nbackends = cloud1, cloud2\nsecret = common7\n\n[cloud1]\nurl = https://cloud1.example.com/\nsecret = short1\n\n[cloud2]\nurl = https://cloud2.example.com/\n\n[signaling]\ninternalsecret = hpb\nsignalings = hpb1\n\n[hpb1]\nurl = https://signaling1.example.com/\ninternalsecret = hpb1-internal-secret\n`;
    const r = importNextcloudConf(conf);
    const cfg = parseConfig(r.config);
    expect(cfg.backends.cloud1.talk!.secret).toBe("short1");
    expect(cfg.backends.cloud2.talk!.secret).toBe("common7");
    expect(r.warnings.map((w) => w.split(" is ")[0])).toEqual(["[cloud1] secret", "[backend] secret (the common secret of backend cloud2)", "[signaling] internalsecret"]);
    expect(r.warnings[0]).toMatch(/is 6 character\(s\), kept as backends\.cloud1\.talk\.secret .*16 or more random characters in Talk's admin settings/);
    expect(r.warnings.join("\n")).not.toMatch(/short1|common7|: hpb\b/); // never the secret itself
    expect(configWarnings(cfg).map((w) => w.split(" is ")[0])).toEqual(["backends.cloud1.talk.secret", "backends.cloud2.talk.secret", "talk.signaling.internalSecret"]);
    // meetrec's own API keys keep the 16-character floor
    expect(() => parseConfig({ backends: { a: { apiKey: "short-key" } } })).toThrow(/backends\.a\.apiKey: must be at least 16 characters/);
    expect(() => parseConfig({ backends: { a: { talk: { url: "https://c.example.com/", secret: "" } } } })).toThrow(/talk\.secret: must not be empty/);

    // meetrec config check repeats them: for the server.conf by its keys, for the written YAML by meetrec's
    const dir = scratchDir("meetrec-import-");
    writeFileSync(join(dir, "server.conf"), conf);
    const cli = (...a: string[]) => execFileSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/main.ts"), ...a], { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, MEETREC_CONFIG: "" } });
    const checkConf = cli("config", "check", "-c", join(dir, "server.conf"));
    expect(checkConf).toMatch(/^configuration is valid/);
    expect(checkConf).toMatch(/^warning: \[cloud1\] secret is 6 character\(s\)/m);
    cli("config", "import-nextcloud", join(dir, "server.conf"), "-o", join(dir, "meetrec.yaml"));
    const checkYaml = cli("config", "check", "-c", join(dir, "meetrec.yaml"));
    expect(checkYaml.split("\n").filter((l) => l.startsWith("warning: ")).map((l) => l.split(" is ")[0])).toEqual(["warning: backends.cloud1.talk.secret", "warning: backends.cloud2.talk.secret", "warning: talk.signaling.internalSecret"]);
    expect(checkYaml).not.toMatch(/short1|common7/);
  });

  test("serve can also read the server.conf directly, and says what it left out", () => {
    const dir = scratchDir("meetrec-import-");
    writeFileSync(join(dir, "server.conf"), SERVER_CONF);
    let left: string[] = [];
    const cfg = loadConfig(join(dir, "server.conf"), {}, (k) => { left = k; });
    expect(Object.keys(cfg.backends)).toEqual(["cloud1", "cloud2"]);
    expect(left).toHaveLength(5); // [ffmpeg] ×2, [recording] browser, [stats] allowed_ips, [app] unknownkey
  });
});
