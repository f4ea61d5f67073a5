/** Runs before every test file (vitest `setupFiles`): its scratch directories go once it has run. */
import { afterAll } from "vitest";
import { removeScratchDirs } from "./scratch.js";

afterAll(removeScratchDirs);
