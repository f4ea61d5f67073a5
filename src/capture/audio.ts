/**
 * Sound: one PulseAudio daemon per machine (started if absent, works as root), and one null
 * sink per recording. The browser plays into its recording's sink only (`PULSE_SINK`), and
 * the encoder reads that sink's monitor source.
 */
import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { MeetrecError, withoutPaths } from "../util/errors.js";
import { ManagedProcess, sleep } from "../util/process.js";

const run = promisify(execFile);

/** Default runtime directory of the daemon: `/tmp/meetrec-pulse-{uid}`. */
export function defaultPulseDir(): string {
  return `/tmp/meetrec-pulse-${process.getuid?.() ?? 0}`;
}

/** A connection to meetrec's PulseAudio daemon (started by us or found running). */
export class PulseServer {
  private constructor(readonly dir: string, private readonly proc?: ManagedProcess) {}

  /** `PULSE_SERVER` value (`unix:/…/native`). */
  get server(): string {
    return `unix:${join(this.dir, "native")}`;
  }

  /** True when this object started the daemon (and will stop it on close). */
  get owned(): boolean {
    return this.proc !== undefined;
  }

  /** Runs `pactl` against this daemon. @throws Error from pactl. */
  async pactl(args: string[]): Promise<string> {
    const { stdout } = await run("pactl", ["--server", this.server, ...args], { timeout: 10000 });
    return stdout.trim();
  }

  private static async alive(dir: string): Promise<boolean> {
    try {
      await run("pactl", ["--server", `unix:${join(dir, "native")}`, "info"], { timeout: 3000 });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Connects to the daemon in `dir`, starting one if none answers. The daemon loads only the
   * native protocol (socket in `dir`, anonymous auth: access is by file permission) and a
   * `meetrec_discard` null sink as default, so a stream without a sink never reaches a recording.
   * @throws MeetrecError `audio_failed` when the daemon cannot be started.
   */
  static async ensure(dir = defaultPulseDir(), pulseaudioPath = "pulseaudio"): Promise<PulseServer> {
    if (await PulseServer.alive(dir)) return new PulseServer(dir);
    mkdirSync(join(dir, "state"), { recursive: true, mode: 0o700 });
    const script = join(dir, "meetrec.pa");
    writeFileSync(script, [
      `load-module module-native-protocol-unix socket=${join(dir, "native")} auth-anonymous=1`,
      "load-module module-null-sink sink_name=meetrec_discard sink_properties=device.description=meetrec-discard",
      "set-default-sink meetrec_discard",
      "",
    ].join("\n"));
    const proc = new ManagedProcess(pulseaudioPath, [
      "-n", "-F", script, "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--use-pid-file=no",
      "--log-target=stderr", "--log-level=error",
    ], { env: { ...process.env, PULSE_RUNTIME_PATH: dir, PULSE_STATE_PATH: join(dir, "state"), HOME: dir }, detached: false });
    for (let i = 0; i < 100; i++) {
      if (!proc.running) break;
      if (await PulseServer.alive(dir)) return new PulseServer(dir, proc);
      await sleep(100);
    }
    await proc.stop("SIGKILL");
    if (await PulseServer.alive(dir)) return new PulseServer(dir); // another process won the race
    // No runtime directory in the message (it can reach API clients); `details.dir` keeps it for the log.
    throw new MeetrecError("audio_failed", `Cannot start PulseAudio: ${withoutPaths(proc.stderr.trim().slice(-500), [dir]) || "no answer in 10 s"}. Is the pulseaudio package installed?`, { details: { dir } });
  }

  /**
   * Creates a null sink named `name` (letters, digits, `_`) whose latency is held at
   * {@link SINK_LATENCY_MS} from the start (see {@link NullSink}). `env` is added to the
   * environment of the sink's latency pin (the recording's marker).
   * @throws MeetrecError `audio_failed` when pactl or the pin fails.
   */
  async createSink(name: string, env: Record<string, string> = {}): Promise<NullSink> {
    try {
      // A sink of that name left by a meetrec that was killed is removed first.
      const modules = await this.pactl(["list", "short", "modules"]);
      for (const line of modules.split("\n")) {
        const [index, module, args] = line.split("\t");
        if (module === "module-null-sink" && new RegExp(`(^| )sink_name=${name}( |$)`).test(args ?? "")) {
          await this.pactl(["unload-module", index]);
        }
      }
      const index = await this.pactl(["load-module", "module-null-sink", `sink_name=${name}`,
        `sink_properties=device.description=${name}`, "rate=48000", "channels=2"]);
      const pin = new ManagedProcess("parec", ["--server", this.server, "-d", `${name}.monitor`, "-v",
        `--latency-msec=${SINK_LATENCY_MS}`, "--raw", "/dev/null"], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
      const sink = new NullSink(this, name, index, pin);
      try {
        await waitForOutput(pin, /Stream successfully created/, 5000);
        // The sink rendered its first block at the idle latency (2 s) before the pin asked for
        // less; a suspend and resume restarts its clock, so what plays into it from now on is
        // rendered within SINK_LATENCY_MS.
        await this.pactl(["suspend-sink", name, "1"]);
        await this.pactl(["suspend-sink", name, "0"]);
      } catch (err) {
        await sink.close();
        throw err;
      }
      return sink;
    } catch (err) {
      throw new MeetrecError("audio_failed", `Cannot create audio sink ${name}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Names of the sinks that currently exist. */
  async sinks(): Promise<string[]> {
    const out = await this.pactl(["list", "short", "sinks"]);
    return out.split("\n").filter(Boolean).map((l) => l.split("\t")[1]);
  }

  /** Stops the daemon if this object started it. Idempotent. */
  async close(): Promise<void> {
    await this.proc?.stop("SIGTERM", 3000);
  }
}

/**
 * Latency the recording's sink is held at, ms. A null sink with no stream asking for less
 * renders 2 s ahead; the browser's stream then lands in that block and the sink's latency
 * drains for up to 2 s, moving the page's sound against its picture while the first seconds
 * are recorded (measured: the sink at 1.87 s latency when the page began to play, 7 ms
 * 2 s later). The encoder's own stream asks for 20 ms ({@link encoderArgs}'s fragment size).
 */
export const SINK_LATENCY_MS = 20;

/** Resolves once `proc` wrote a line matching `re` to stderr. @throws Error on exit or after `timeoutMs`. */
async function waitForOutput(proc: ManagedProcess, re: RegExp, timeoutMs: number): Promise<void> {
  for (const until = Date.now() + timeoutMs; Date.now() < until;) {
    if (re.test(proc.stderr)) return;
    if (!proc.running) throw new Error(`parec exited: ${proc.stderr.trim().slice(-300)}`);
    await sleep(20);
  }
  throw new Error(`parec did not connect in ${timeoutMs} ms`);
}

/**
 * A recording's private null sink. `monitor` is the source the encoder reads. A `parec` on the
 * monitor (the latency pin, output discarded) asks for {@link SINK_LATENCY_MS} for the sink's
 * whole life, so its latency does not change when the encoder's stream comes and goes.
 */
export class NullSink {
  private closed = false;
  constructor(private readonly server: PulseServer, readonly name: string, readonly moduleIndex: string, private readonly pin?: ManagedProcess) {}

  /** PID of the latency pin (a process of the recording). */
  get pinPid(): number | undefined {
    return this.pin?.pid;
  }

  get monitor(): string {
    return `${this.name}.monitor`;
  }

  /** Environment that routes a process's sound into this sink. */
  env(): Record<string, string> {
    return { PULSE_SERVER: this.server.server, PULSE_SINK: this.name };
  }

  /** Unloads the sink. Idempotent; never throws. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pin?.stop("SIGTERM", 1000);
    await this.server.pactl(["unload-module", this.moduleIndex]).catch(() => undefined);
  }
}

/**
 * The machine's PulseAudio daemon as a process uses it: started (or found) on first use, tried
 * again after a failed start, and stopped on {@link SharedPulse.close} only if this process
 * started it.
 */
export class SharedPulse {
  private server?: Promise<PulseServer>;
  constructor(private readonly dir: string, private readonly pulseaudioPath?: string) {}

  /** @throws MeetrecError `audio_failed` (see {@link PulseServer.ensure}). */
  get(): Promise<PulseServer> {
    this.server ??= PulseServer.ensure(this.dir, this.pulseaudioPath).catch((err) => { this.server = undefined; throw err; });
    return this.server;
  }

  async close(): Promise<void> {
    if (this.server) await (await this.server.catch(() => undefined))?.close();
  }
}
