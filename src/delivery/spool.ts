/**
 * Spool-directory delivery for importers (BigBlueButton / PILOS style): the file and a JSON
 * sidecar are written under temporary names, fsync'd and renamed into place, so an importer
 * watching the directory never sees a partial file. The sidecar is renamed last: its presence
 * means the recording is complete.
 */
import { copyFile, mkdir, open, rename, rm, writeFile } from "node:fs/promises";
import { extname, join } from "node:path";
import type { SpoolTarget } from "../config/index.js";

const SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

async function fsync(path: string): Promise<void> {
  const fh = await open(path, "r");
  try { await fh.sync(); } finally { await fh.close(); }
}

/**
 * Where a recording goes: `path[/subdir]`, subdir = the metadata value named by
 * `subdirFromMetadata`. @throws Error when that value is missing or unsafe (the recording's
 * metadata must be fixed; the delivery is retried).
 */
export function spoolDir(target: SpoolTarget, metadata: Record<string, unknown>): string {
  if (!target.subdirFromMetadata) return target.path;
  const value = metadata[target.subdirFromMetadata];
  if (typeof value !== "string" || !SAFE.test(value) || value.includes("..")) {
    throw new Error(`metadata.${target.subdirFromMetadata} must name the spool sub-directory (letters, digits, . _ -), got ${JSON.stringify(value)}`);
  }
  return join(target.path, value);
}

/**
 * Copies `file` to `{dir}/{id}{ext}` and writes `{dir}/{id}.json` (`sidecar`), each via a
 * `.partial` name. Returns the final file path. Idempotent: a retry overwrites both.
 */
export async function deliverToSpool(target: SpoolTarget, rec: { id: string; metadata: Record<string, unknown> }, file: string, sidecar: unknown): Promise<string> {
  const dir = spoolDir(target, rec.metadata);
  await mkdir(dir, { recursive: true });
  const dest = join(dir, `${rec.id}${extname(file)}`);
  const meta = join(dir, `${rec.id}.json`);
  const tmpFile = join(dir, `.${rec.id}${extname(file)}.partial`);
  const tmpMeta = join(dir, `.${rec.id}.json.partial`);
  try {
    await copyFile(file, tmpFile);
    await fsync(tmpFile);
    await rename(tmpFile, dest);
    await writeFile(tmpMeta, JSON.stringify(sidecar, null, 2));
    await fsync(tmpMeta);
    await rename(tmpMeta, meta);
    await fsync(dir);
  } catch (err) {
    await rm(tmpFile, { force: true });
    await rm(tmpMeta, { force: true });
    throw err;
  }
  return dest;
}
