import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EmbeddedHost } from "../../src/hosts/index.js";
import { parseConfig } from "../../src/config/index.js";
import { createLogger } from "../../src/util/log.js";
import { completedRecording } from "../helpers/recordings.js";

let dir: string;
let app: EmbeddedHost;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meetrec-retention-"));
  app = await EmbeddedHost.start(parseConfig({ dataDir: dir, backends: {
    short: { apiKey: "short-backend-key-0123456789", retentionDays: 7, dataDir: join(dir, "short-disk") },
    forever: { apiKey: "forever-backend-key-0123456789" },
  } }), createLogger("silent"));
});
afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("retention", () => {
  test("media older than retentionDays is removed, the row and its history stay; other backends keep theirs", async () => {
    const a = await completedRecording(app, "short");
    const b = await completedRecording(app, "forever");
    expect(a.file.startsWith(join(dir, "short-disk", "recordings", a.id))).toBe(true); // the backend's own data directory
    expect(b.file.startsWith(join(dir, "recordings", b.id))).toBe(true);
    expect(await app.retention.sweep(new Date(Date.now() + 6 * 86400_000))).toEqual([]);
    expect(existsSync(a.file)).toBe(true);
    expect(await app.retention.sweep(new Date(Date.now() + 8 * 86400_000))).toEqual([a.id]);
    expect(existsSync(app.files.dir({ id: a.id, backend: "short" }))).toBe(false);
    expect(existsSync(b.file)).toBe(true);
    const rec = await app.recordings.get(a.id);
    expect(rec.status).toBe("completed");
    expect(rec.file).toBeNull();
    const ev = (await app.recordings.events(a.id)).find((e) => e.type === "retention_purged")!;
    expect(ev.message).toContain("7 days");
    expect(await app.retention.sweep(new Date(Date.now() + 30 * 86400_000))).toEqual([]); // nothing twice
  });
});
