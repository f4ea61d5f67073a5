/**
 * Spool-directory delivery for importers (BigBlueButton / PILOS style): the file and a JSON
 * sidecar are written under temporary names, fsync'd and renamed into place, so an importer
 * watching the directory never sees a partial file. The sidecar is renamed last: its presence
 * means the recording is complete. A `[user@]host:path` destination is written with rsync over
 * SSH (rsync itself writes to a temporary name and renames; the sidecar is sent second).
 * The `spool` file target.
 */
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, open, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { promisify } from "node:util";
import type { SpoolTarget } from "../../config/index.js";
import { MeetrecError, errorMessage, publicErrorMessage } from "../../util/errors.js";
import { wants, type FileTarget } from "../registry.js";

const SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Whether `name` may be a spool sub-directory: a plain name of 1–128 letters, digits, `.`, `_`
 * and `-`, not starting with a dot and without `..`. The one rule for sub-directories, whether
 * they come from metadata (`subdirFromMetadata`) or from a request (`delivery.spool.subdir`).
 */
export function isSafeSubdir(name: unknown): name is string {
  return typeof name === "string" && SAFE.test(name) && !name.includes("..");
}

async function fsync(path: string): Promise<void> {
  const fh = await open(path, "r");
  try { await fh.sync(); } finally { await fh.close(); }
}

/**
 * The sub-directory a recording goes to under `target.path`: the metadata value named by
 * `subdirFromMetadata`, or undefined when the target has none.
 * @throws MeetrecError `validation_failed` (`details.field`: `metadata.{key}`) when that value is
 * missing or not a safe name ({@link isSafeSubdir}); the recording's metadata must be fixed.
 */
export function spoolSubdir(target: Pick<SpoolTarget, "subdirFromMetadata">, metadata: Record<string, unknown>): string | undefined {
  const key = target.subdirFromMetadata;
  if (!key) return undefined;
  const value = metadata[key];
  if (!isSafeSubdir(value)) {
    throw new MeetrecError("validation_failed", `metadata.${key} must name the spool sub-directory (letters, digits, . _ -, not starting with a dot), got ${value === undefined ? "nothing" : JSON.stringify(value)}`, { details: { field: `metadata.${key}` } });
  }
  return value;
}

/**
 * Where a recording goes: `path[/subdir]`, subdir = {@link spoolSubdir}.
 * @throws MeetrecError `validation_failed` as {@link spoolSubdir} (a delivery retries it).
 */
export function spoolDir(target: Pick<SpoolTarget, "path" | "subdirFromMetadata">, metadata: Record<string, unknown>): string {
  const sub = spoolSubdir(target, metadata);
  return sub ? join(target.path, sub) : target.path;
}

/**
 * What a spool delivery did: `dest`, the file's full path (`host:path` when remote), is for
 * the server's log; `shown` says where without any path of this or the remote machine, for
 * API clients (`written to the spool directory: school-7/{id}.mp4`, `… on host: …`).
 */
export interface SpoolResult {
  dest: string;
  shown: string;
}

/** `sub/name` or `name`: the part of a spool destination a client may see. */
const inSpool = (sub: string | undefined, name: string) => (sub ? `${sub}/${name}` : name);

/**
 * A failure of the local file system as a message without its path (Node puts the path in
 * `message`): `ENOSPC: no space left on device (copyfile)`. The original stays the `cause`, for the log.
 */
function withoutPath(err: unknown, sub: string | undefined): Error {
  return new Error(`Cannot write to the spool directory${sub ? ` (sub-directory ${sub})` : ""}: ${publicErrorMessage(err)}; check that it is a writable directory with free space`, { cause: err });
}

/**
 * Copies `file` to `{dir}/{id}{ext}` and writes `{dir}/{id}.json` (`sidecar`), each via a
 * `.partial` name; `dir` is `target.path` plus `subdir` (default: from `subdirFromMetadata`).
 * Idempotent: a retry overwrites both.
 * @throws Error whose message names no local path (the original error is its `cause`).
 */
export async function deliverToSpool(target: SpoolTarget, rec: { id: string; metadata: Record<string, unknown> }, file: string, sidecar: unknown, subdir?: string): Promise<SpoolResult> {
  const sub = subdir ?? spoolSubdir(target, rec.metadata);
  if (isRemote(target.path)) return rsyncToSpool(target, rec, file, sidecar, sub);
  const dir = sub ? join(target.path, sub) : target.path;
  const name = `${rec.id}${extname(file)}`;
  try {
    await writeLocal(dir, rec.id, file, sidecar);
  } catch (err) {
    throw withoutPath(err, sub);
  }
  return { dest: join(dir, name), shown: `written to the spool directory: ${inSpool(sub, name)}` };
}

async function writeLocal(dir: string, id: string, file: string, sidecar: unknown): Promise<void> {
  await mkdir(dir, { recursive: true });
  const dest = join(dir, `${id}${extname(file)}`);
  const meta = join(dir, `${id}.json`);
  const tmpFile = join(dir, `.${id}${extname(file)}.partial`);
  const tmpMeta = join(dir, `.${id}.json.partial`);
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
}

const run = promisify(execFile);

/** `host:path` / `user@host:path` (not a local path that happens to contain a colon after a slash). */
export function isRemote(path: string): boolean {
  return /^[^/:]+:/.test(path);
}

/** The ssh command rsync runs: key, port, strict host keys, never a prompt. */
export function sshCommand(t: SpoolTarget): string {
  const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  return ["ssh", "-p", String(t.sshPort), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=15",
    ...(t.sshKey ? ["-i", q(t.sshKey), "-o", "IdentitiesOnly=yes"] : []),
    ...(t.knownHostsFile ? ["-o", `UserKnownHostsFile=${q(t.knownHostsFile)}`] : [])].join(" ");
}

/** The host of a `[user@]host:path` destination, as `host:` (neither user nor path). */
function remoteHost(path: string): string {
  return `${path.slice(0, path.indexOf(":")).replace(/^.*@/, "")}:`;
}

async function rsyncToSpool(t: SpoolTarget, rec: { id: string; metadata: Record<string, unknown> }, file: string, sidecar: unknown, sub: string | undefined): Promise<SpoolResult> {
  const base = t.path.replace(/\/+$/, "");
  const host = remoteHost(t.path);
  const destDir = sub ? `${base}${base.endsWith(":") ? "" : "/"}${sub}/` : `${base}${base.endsWith(":") ? "" : "/"}`;
  const remotePath = destDir.slice(destDir.indexOf(":") + 1);
  const name = `${rec.id}${extname(file)}`;
  let tmp: string | undefined;
  try {
    let local: string, meta: string;
    try {
      tmp = await mkdtemp(join(tmpdir(), "meetrec-rsync-"));
      local = join(tmp, name);
      meta = join(tmp, `${rec.id}.json`);
      await copyFile(file, local);
      await writeFile(meta, JSON.stringify(sidecar, null, 2));
    } catch (err) {
      throw new Error(`Cannot stage the file for rsync in the temporary directory: ${publicErrorMessage(err)}`, { cause: err });
    }
    const rsync = (src: string) => run("rsync", ["--mkpath", "--chmod=F644", "--timeout=60", "-e", sshCommand(t), src, destDir], { timeout: 30 * 60_000 });
    try {
      await rsync(local);
      await rsync(meta);
    } catch (err) {
      const stderr = String((err as { stderr?: string }).stderr ?? "").trim().split("\n").slice(-3).join(" | ");
      // rsync and ssh quote paths ("/srv/incoming/x", our temporary copy): cut those and the remote path.
      let why = stderr || `exit code ${String((err as { code?: unknown }).code ?? "unknown")}`;
      if (remotePath) why = why.split(remotePath).join("…");
      why = why.replace(/"[^"]*\/[^"]*"/g, '"…"');
      throw new Error(`rsync to ${host} failed: ${why}`, { cause: err });
    }
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
  return { dest: `${destDir}${name}`, shown: `written to the spool on ${host} ${inSpool(sub, name)}` };
}

/**
 * The `spool` target: the file and its sidecar (the recording as the API shows it) go to the
 * backend's spool directory ({@link deliverToSpool}) unless the recording chose targets without
 * `spool`. Its sub-directory — the recording's `delivery.spool.subdir`, else the metadata value
 * named by `subdirFromMetadata` — must be present and a plain name ({@link spoolSubdir}).
 */
export const spoolTarget: FileTarget = {
  name: "spool",
  kind: "file",
  plan: (rec, backend) => (backend.delivery.spool && wants(rec, "spool") ? ["spool"] : []),
  inputProblems(rec, backend) {
    const spool = backend.delivery.spool;
    if (!spool || !wants(rec, "spool") || rec.options.delivery?.spool?.subdir) return [];
    try {
      spoolSubdir(spool, rec.metadata);
      return [];
    } catch (err) {
      const field = `metadata.${spool.subdirFromMetadata}`;
      return [{ field, message: `${errorMessage(err)}: backend ${rec.backend} delivers into a spool sub-directory named by ${field}` }];
    }
  },
  async deliver(_d, rec, ctx) {
    if (!ctx.backend.delivery.spool) throw new Error(`backend ${rec.backend} has no spool directory any more`);
    // The attempt's message reaches API clients: it names the spool's sub-directory and file, never its path.
    const { dest, shown } = await deliverToSpool(ctx.backend.delivery.spool, rec, await ctx.filePath(rec), ctx.describe(rec), rec.options.delivery?.spool?.subdir);
    ctx.log.info({ recordingId: rec.id, dest }, "spool: file written");
    return shown;
  },
};
