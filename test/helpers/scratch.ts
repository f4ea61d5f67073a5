/**
 * Scratch directories for tests: {@link scratchDir} makes one under the system's temporary
 * directory, and every one a test file made is removed once the file has run, pass or fail
 * (`afterAll` in test/helpers/setup.ts, run after the file's own hooks have stopped its servers).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const made: string[] = [];

/** A new empty directory `{tmpdir}/{prefix}XXXXXX`, removed after the test file. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Removes every directory {@link scratchDir} made in this test file. */
export function removeScratchDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}
