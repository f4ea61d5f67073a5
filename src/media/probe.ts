/**
 * ffprobe: what a media file contains.
 */
import { execFile } from "node:child_process";
import { basename, dirname } from "node:path";
import { promisify } from "node:util";
import { MeetrecError, withoutPaths } from "../util/errors.js";

const run = promisify(execFile);

/** One stream of a probed file. */
export interface ProbeStream {
  index: number;
  type: "video" | "audio" | string;
  codec: string;
  width?: number;
  height?: number;
  /** Frames per second (video). */
  fps?: number;
  sampleRate?: number;
  channels?: number;
  durationSeconds?: number;
}

export interface ProbeResult {
  format: string;
  durationSeconds: number;
  bytes: number;
  bitRate?: number;
  streams: ProbeStream[];
}

function rate(r: string | undefined): number | undefined {
  if (!r) return undefined;
  const [n, d] = r.split("/").map(Number);
  return d ? n / d : n || undefined;
}

/**
 * Probes `path` with ffprobe. @throws MeetrecError `finalize_failed` when ffprobe cannot read it.
 */
export async function probe(path: string, ffprobePath = "ffprobe"): Promise<ProbeResult> {
  let stdout: string;
  try {
    ({ stdout } = await run(ffprobePath, ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", path], { maxBuffer: 16 << 20 }));
  } catch (err) {
    // No local path in the message (it can become a recording's error.message); the cause has it.
    const why = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    throw new MeetrecError("finalize_failed", `ffprobe cannot read ${basename(path)}: ${withoutPaths(why, [path, dirname(path)])}`, { cause: err });
  }
  const j = JSON.parse(stdout) as { format: Record<string, string>; streams: Record<string, unknown>[] };
  return {
    format: j.format.format_name,
    durationSeconds: Number(j.format.duration ?? 0),
    bytes: Number(j.format.size ?? 0),
    bitRate: j.format.bit_rate ? Number(j.format.bit_rate) : undefined,
    streams: j.streams.map((s) => ({
      index: s.index as number,
      type: s.codec_type as string,
      codec: s.codec_name as string,
      width: s.width as number | undefined,
      height: s.height as number | undefined,
      fps: s.codec_type === "video" ? rate(s.avg_frame_rate as string) : undefined,
      sampleRate: s.sample_rate ? Number(s.sample_rate) : undefined,
      channels: s.channels as number | undefined,
      durationSeconds: s.duration ? Number(s.duration) : undefined,
    })),
  };
}

/**
 * When a period's media begins, s of media time: the `type` stream's start time in the first
 * media segment (`init` ‖ `segment`, handed to ffprobe on stdin, so nothing on disk is needed);
 * `any`: the earliest start of its streams, which is where a file stitched from it begins (the
 * remux shifts that to 0). The encoder keeps capture timestamps (media time 0 = its spawn), so
 * this is how long after the spawn capture really began. Undefined when ffprobe cannot tell.
 */
export async function mediaStartSeconds(init: Buffer, segment: Buffer, type: "video" | "audio" | "any", ffprobePath = "ffprobe"): Promise<number | undefined> {
  try {
    const child = execFile(ffprobePath, ["-v", "error", "-print_format", "json", "-show_entries", "stream=codec_type,start_time", "-i", "pipe:0"], { maxBuffer: 1 << 20, timeout: 10_000 });
    const out = new Promise<string>((resolve, reject) => {
      let text = "";
      child.stdout?.on("data", (d: Buffer) => { text += d.toString(); });
      child.on("error", reject);
      child.on("close", (code) => (code === 0 ? resolve(text) : reject(new Error(`ffprobe exited ${code}`))));
    });
    child.stdin?.on("error", () => undefined); // ffprobe may stop reading once it knows
    child.stdin?.end(Buffer.concat([init, segment]));
    const j = JSON.parse(await out) as { streams: { codec_type: string; start_time?: string }[] };
    const starts = j.streams.filter((x) => type === "any" || x.codec_type === type).map((x) => Number(x.start_time)).filter(Number.isFinite);
    return starts.length ? Math.min(...starts) : undefined;
  } catch {
    return undefined;
  }
}
