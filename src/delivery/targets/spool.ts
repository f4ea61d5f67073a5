/**
 * Spool-directory delivery for importers (BigBlueButton / PILOS style). What a recording
 * becomes there is its spool **package** (`delivery.spool.package`): `files` (here) = the file
 * and a JSON sidecar; a platform's package (PILOS's tar, `platforms/pilos/`) is installed by the
 * hosts. Each output of a package is written under a temporary name, fsync'd and renamed into
 * place, in order, so an importer watching the directory never sees a partial file (the
 * `files` sidecar is renamed last: its presence means the recording is complete). A
 * `[user@]host:path` destination is written with rsync over SSH (rsync itself writes to a
 * temporary name and renames; the outputs are sent one after the other). The `spool` file target.
 */
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, open, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { promisify } from "node:util";
import type { SpoolPackageName, SpoolTarget } from "../../config/index.js";
import { speakersDocument, speakersFileName, trackFileName, trackNumber, type SpeakersFile } from "../../media/index.js";
import type { Recording } from "../../store/index.js";
import { MeetrecError, errorMessage, publicErrorMessage } from "../../util/errors.js";
import { wants, type DeliveryContext, type DeliveryInputProblem, type FileTarget, type RequestedRecording } from "../registry.js";

/** One file a spool package puts into the spool (sub-)directory. */
export interface SpoolOutput {
  /** Its name there: a plain file name, the same at every attempt (a redelivery overwrites it). */
  name: string;
  /**
   * Writes the whole file to `path`, a temporary name in the same directory (local spool) or in
   * a staging directory (rsync); the spool syncs and renames it.
   * @throws Error when it cannot (the attempt is retried).
   */
  write(path: string): Promise<void>;
}

/**
 * What one recording becomes in a spool directory (`delivery.spool.package`): `files` is the
 * spool's own ({@link filesPackage}); a platform's is installed by the hosts (see {@link spoolTarget}).
 */
export interface SpoolPackage {
  /**
   * What the package needs from the recording's metadata and cannot use, checked at `POST` and
   * metadata `PATCH` with the rules its outputs use (the field, `metadata.{key}`, and why).
   */
  inputProblems?(rec: RequestedRecording): DeliveryInputProblem[];
  /**
   * The files of `rec` (its finished file at the local path `file`), in the order they must
   * appear: an importer that waits for the last one has them all.
   * @throws Error when the recording cannot be packed as it is now (the attempt is retried).
   */
  outputs(rec: Recording, file: string, ctx: Pick<DeliveryContext, "config" | "describe">, extra?: { speakers?: SpeakersFile; tracks?: { name: string; path: string }[] }): SpoolOutput[];
}

/**
 * The `files` package: the file as `{id}{ext}`, its per-participant tracks
 * `{id}{ext}.track-{n}.ogg` (`tracks: true`), its speakers sidecar `{id}{ext}.speakers.json`
 * when anyone was heard speaking, then `{id}.json` (the recording as the API shows it).
 */
export const filesPackage: SpoolPackage = {
  outputs: (rec, file, ctx, extra) => [
    { name: `${rec.id}${extname(file)}`, write: (path) => copyFile(file, path) },
    ...(extra?.tracks ?? []).map((t) => ({ name: trackFileName(`${rec.id}${extname(file)}`, trackNumber(t.name) ?? 0), write: (path: string) => copyFile(t.path, path) })),
    ...(extra?.speakers ? [{ name: speakersFileName(`${rec.id}${extname(file)}`), write: (path: string) => writeFile(path, JSON.stringify(extra.speakers, null, 2)) }] : []),
    { name: `${rec.id}.json`, write: (path) => writeFile(path, JSON.stringify(ctx.describe(rec), null, 2)) },
  ],
};

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
 * Writes `outputs`, in order, to `{dir}` = `target.path` plus `subdir` (default: from
 * `subdirFromMetadata`): each under a temporary name (`.{name}.partial`, which no importer
 * takes for a finished file), fsync'd, then renamed over its final name; a remote `target.path`
 * by rsync. Idempotent: a retry overwrites every output.
 * @throws Error whose message names no local path (the original error is its `cause`).
 */
export async function deliverToSpool(target: SpoolTarget, rec: { metadata: Record<string, unknown> }, outputs: SpoolOutput[], subdir?: string): Promise<SpoolResult> {
  const sub = subdir ?? spoolSubdir(target, rec.metadata);
  if (isRemote(target.path)) return rsyncToSpool(target, outputs, sub);
  const dir = sub ? join(target.path, sub) : target.path;
  try {
    await writeLocal(dir, outputs);
  } catch (err) {
    throw withoutPath(err, sub);
  }
  return { dest: join(dir, outputs[0].name), shown: `written to the spool directory: ${inSpool(sub, outputs[0].name)}` };
}

async function writeLocal(dir: string, outputs: SpoolOutput[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const o of outputs) {
    const tmp = join(dir, `.${o.name}.partial`);
    try {
      await o.write(tmp);
      await fsync(tmp);
      await rename(tmp, join(dir, o.name));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
  await fsync(dir);
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

async function rsyncToSpool(t: SpoolTarget, outputs: SpoolOutput[], sub: string | undefined): Promise<SpoolResult> {
  const base = t.path.replace(/\/+$/, "");
  const host = remoteHost(t.path);
  const destDir = sub ? `${base}${base.endsWith(":") ? "" : "/"}${sub}/` : `${base}${base.endsWith(":") ? "" : "/"}`;
  const remotePath = destDir.slice(destDir.indexOf(":") + 1);
  const name = outputs[0].name;
  let tmp: string | undefined;
  try {
    const staged: string[] = [];
    try {
      tmp = await mkdtemp(join(tmpdir(), "meetrec-rsync-"));
      for (const o of outputs) {
        staged.push(join(tmp, o.name));
        await o.write(staged.at(-1)!);
      }
    } catch (err) {
      throw new Error(`Cannot stage the file for rsync in the temporary directory: ${publicErrorMessage(err)}`, { cause: err });
    }
    // rsync's default: each file goes to a hidden temporary name on the far side and is renamed
    // when complete (no --inplace / --append / --partial), so an importer never opens half of one.
    const rsync = (src: string) => run("rsync", ["--mkpath", "--chmod=F644", "--timeout=60", "-e", sshCommand(t), src, destDir], { timeout: 30 * 60_000 });
    try {
      for (const src of staged) await rsync(src);
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
 * The `spool` target: each recording's package (`delivery.spool.package`: `files`, or a
 * platform's from `packages`) goes to the backend's spool directory ({@link deliverToSpool})
 * unless the recording chose targets without `spool`. Its sub-directory — the recording's
 * `delivery.spool.subdir`, else the metadata value named by `subdirFromMetadata` — must be
 * present and a plain name ({@link spoolSubdir}); what the package needs is checked with it.
 * @param packages every package but `files`, by the name the configuration uses.
 */
export function spoolTarget(packages: Record<Exclude<SpoolPackageName, "files">, SpoolPackage>): FileTarget {
  const packageOf = (spool: SpoolTarget): SpoolPackage => (spool.package === "files" ? filesPackage : packages[spool.package]);
  return {
    name: "spool",
    kind: "file",
    plan: (rec, backend) => (backend.delivery.spool && wants(rec, "spool") ? ["spool"] : []),
    inputProblems(rec, backend) {
      const spool = backend.delivery.spool;
      if (!spool || !wants(rec, "spool")) return [];
      const problems: DeliveryInputProblem[] = [];
      if (!rec.options.delivery?.spool?.subdir) {
        try {
          spoolSubdir(spool, rec.metadata);
        } catch (err) {
          const field = `metadata.${spool.subdirFromMetadata}`;
          problems.push({ field, message: `${errorMessage(err)}: backend ${rec.backend} delivers into a spool sub-directory named by ${field}` });
        }
      }
      return [...problems, ...(packageOf(spool).inputProblems?.(rec) ?? [])];
    },
    async deliver(_d, rec, ctx) {
      const spool = ctx.backend.delivery.spool;
      if (!spool) throw new Error(`backend ${rec.backend} has no spool directory any more`);
      const speakers = rec.file ? speakersDocument(rec.file.name, await ctx.store.speakerIntervals(rec.id), rec.file.timeline) : undefined;
      const tracks = rec.file?.tracks?.length && ctx.trackPaths ? await ctx.trackPaths(rec) : [];
      const outputs = packageOf(spool).outputs(rec, await ctx.filePath(rec), ctx, { speakers, tracks });
      // The attempt's message reaches API clients: it names the spool's sub-directory and file, never its path.
      const { dest, shown } = await deliverToSpool(spool, rec, outputs, rec.options.delivery?.spool?.subdir);
      ctx.log.info({ recordingId: rec.id, dest, package: spool.package }, "spool: file written");
      return shown;
    },
  };
}
