/**
 * Process accounting from `/proc` (Linux): the process trees under given pids and their CPU
 * time. Used by the recorder node to measure what a recording costs, and by `make bench`.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

/** Clock ticks per second (`getconf CLK_TCK`, 100 on Linux unless configured otherwise). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** `[pid, ppid]` of every process now. */
function parents(): [number, number][] {
  const out: [number, number][] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const f = readFileSync(`/proc/${name}/stat`, "utf8");
      const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
      out.push([Number(name), Number(rest[1])]);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The given pids that exist and all their descendants. */
export function processTree(roots: number[]): number[] {
  const rows = parents();
  const alive = new Set(rows.map(([pid]) => pid));
  const out = new Set(roots.filter((p) => alive.has(p)));
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of rows) if (out.has(ppid) && !out.has(pid)) { out.add(pid); grew = true; }
  }
  return [...out];
}

/** User + system CPU time of `pid`, s (0 when it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}
