/**
 * Durable file writes: what is on disk after a crash is either the old file or the whole new
 * one, never half of it.
 */
import { open, rename } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Flushes a file or a directory (its entries) to disk. Throws the `fs` error if it cannot be opened. */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes `data` to `path` atomically: a temporary file in the same folder (`tmpName`, default
 * `{name}.tmp`; a name starting with `.` hides it from readers that skip dot files), fsync,
 * rename over `path`, fsync of the folder. A reader sees the old file or the new one, whole.
 * @param mode file mode of a new file before the umask (default 0o666).
 * @throws the `fs` error of the write or rename; the temporary file may then be left behind.
 */
export async function atomicWrite(path: string, data: string | Buffer, opts: { tmpName?: string; mode?: number } = {}): Promise<void> {
  const tmp = opts.tmpName ? join(dirname(path), opts.tmpName) : `${path}.tmp`;
  const fh = await open(tmp, "w", opts.mode ?? 0o666);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await fsyncPath(dirname(path));
}
