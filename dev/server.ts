/**
 * Runs `meetrec serve` (from source, through tsx) as a child process for a test, optionally
 * inside a network namespace. The API listens on a Unix socket, which is reachable from the
 * test process whatever the namespace; its PulseAudio daemon lives in the test's directory,
 * so stopping the server stops it too.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { stringify } from "yaml";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./meeting.js";
import type { Netns } from "./netns.js";

export const API_KEY = "test-key-0123456789abcdef";

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json<T = any>(): T;
}

/** One HTTP request over a Unix socket. */
export function unixRequest(socketPath: string, method: string, path: string, opts: { body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<HttpResponse> {
  const payload = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  const headers: Record<string, string> = { ...(payload !== undefined ? { "content-type": "application/json" } : {}), ...opts.headers };
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString()) });
      });
    });
    req.on("error", reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

export interface TestServer {
  dir: string;
  dataDir: string;
  socket: string;
  pulseDir: string;
  child: ChildProcess;
  /** Authenticated request to the API. */
  api(method: string, path: string, body?: unknown): Promise<HttpResponse>;
  /** Polls GET /v1/recordings/{id} until `until(rec)` or the timeout (ms). */
  waitFor(id: string, until: (rec: any) => boolean, timeoutMs?: number): Promise<any>;
  /** The server's log so far. */
  log(): string;
  /** SIGTERM (graceful: live recordings are finalized), SIGKILL after 60 s; removes the test directory. */
  stop(opts?: { keep?: boolean }): Promise<void>;
}

/** PIDs of all descendants of `pid` with their command lines. */
export function descendants(pid: number): { pid: number; args: string }[] {
  const rows = execFileSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" }).trim().split("\n").map((l) => {
    const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l)!;
    return { pid: Number(m[1]), ppid: Number(m[2]), args: m[3] };
  });
  const out: { pid: number; args: string }[] = [];
  const walk = (p: number) => {
    for (const r of rows) if (r.ppid === p) { out.push({ pid: r.pid, args: r.args }); walk(r.pid); }
  };
  walk(pid);
  return out;
}

/**
 * What the `default` backend's recorder may reach (its `allowedOrigins` and
 * `allowedRequestOrigins`): test pages live on loopback or private addresses, which the egress
 * policy refuses unless a backend names them.
 */
export interface BackendEgress {
  allowedOrigins?: string[];
  allowedRequestOrigins?: string[];
}

/** The environment that gives the `default` backend `e`. */
export function egressEnv(e: BackendEgress): Record<string, string> {
  return {
    ...(e.allowedOrigins ? { MEETREC_BACKENDS__DEFAULT__ALLOWED_ORIGINS: JSON.stringify(e.allowedOrigins) } : {}),
    ...(e.allowedRequestOrigins ? { MEETREC_BACKENDS__DEFAULT__ALLOWED_REQUEST_ORIGINS: JSON.stringify(e.allowedRequestOrigins) } : {}),
  };
}

/**
 * Starts a server (`args`, default `serve`; e.g. `worker`) and waits for /healthz. `env` adds MEETREC_* settings; `config` is written as
 * its meetrec.yaml; `dataDir` (default: inside the test directory, removed on stop) keeps the
 * recordings elsewhere; `egress` names what the default backend's recorder may open.
 * `startWhen` (default `joined`): when recordings begin unless a request says — the test pages
 * (the sync page, fixtures without WebRTC) have no remote media, so `media`, meetrec's default,
 * would make each wait `startTimeoutSeconds`; tests of a real meeting pass `media`.
 * @throws Error when it does not answer within 30 s.
 */
export async function startServer(opts: { netns?: Netns; env?: Record<string, string>; dataDir?: string; config?: Record<string, unknown>; args?: string[]; egress?: BackendEgress; startWhen?: "joined" | "media" } = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "meetrec-test-"));
  if (opts.egress) opts = { ...opts, env: { ...egressEnv(opts.egress), ...opts.env } };
  if (opts.config) {
    writeFileSync(join(dir, "meetrec.yaml"), stringify(opts.config));
    opts = { ...opts, env: { MEETREC_CONFIG: join(dir, "meetrec.yaml"), ...opts.env } };
  }
  const dataDir = opts.dataDir ?? join(dir, "data");
  const socket = join(dir, "api.sock");
  const pulseDir = join(dir, "pulse");
  const argv = [process.execPath, "--import", "tsx", join(REPO_ROOT, "src/cli/main.ts"), ...(opts.args ?? ["serve"])];
  const full = opts.netns ? opts.netns.exec(argv) : argv;
  const logFile = join(dir, "server.log");
  const fd = openSync(logFile, "a");
  const child = spawn(full[0], full.slice(1), {
    cwd: REPO_ROOT,
    stdio: ["ignore", fd, fd],
    env: {
      ...process.env, MEETREC_LISTEN: `unix:${socket}`, MEETREC_DATA_DIR: dataDir, MEETREC_API_KEY: API_KEY,
      MEETREC_CAPTURE__PULSE_DIR: pulseDir, MEETREC_LOG_LEVEL: "debug", MEETREC_START_WHEN: opts.startWhen ?? "joined", ...opts.env,
    },
  });
  const api = (method: string, path: string, body?: unknown) =>
    unixRequest(socket, method, path, { body, headers: { authorization: `Bearer ${API_KEY}` } });
  const log = () => { try { return readFileSync(logFile, "utf8"); } catch { return ""; } };
  const server: TestServer = {
    dir, dataDir, socket, pulseDir, child, api, log,
    async waitFor(id, until, timeoutMs = 90_000) {
      const end = Date.now() + timeoutMs;
      let rec: any;
      while (Date.now() < end) {
        const r = await api("GET", `/v1/recordings/${id}`);
        rec = r.json();
        if (until(rec)) return rec;
        await new Promise((res) => setTimeout(res, 300));
      }
      throw new Error(`recording ${id} did not reach the expected state in ${timeoutMs} ms; last: ${JSON.stringify(rec)?.slice(0, 3000)}`);
    },
    async stop({ keep = false } = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        // ip netns exec replaces itself with node (execvp), so the signal reaches meetrec.
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 60_000))]);
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      }
      // Anything still running from this test's directory (a crashed server's sound daemon) goes too.
      try { execFileSync("pkill", ["-KILL", "-f", dir]); } catch { /* none */ }
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await unixRequest(socket, "GET", "/healthz");
      if (r.status === 200) return server;
    } catch { /* not yet */ }
    if (child.exitCode !== null || Date.now() > end) {
      await server.stop({ keep: true });
      throw new Error(`meetrec serve did not start: ${log().slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A TCP port on 127.0.0.1 that is free right now (for a server a test starts later). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}
