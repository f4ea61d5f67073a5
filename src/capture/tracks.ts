/**
 * Per-participant audio in the page (`tracks: true`): a script injected before any page script
 * (beside the media watcher, whose `RTCPeerConnection` wrapper hands it every `track` event)
 * records each remote audio track with its own `MediaRecorder` (W3C MediaStream Recording;
 * Opus in WebM — Chromium and Firefox — else Opus in Ogg, by `MediaRecorder.isTypeSupported`)
 * with a 1 s timeslice, and sends each chunk, base64, through a puppeteer binding; the Node side
 * ({@link TrackTaps}) hands them in order to the session's hooks, which make them durable
 * (media/tracks.ts). The recorders run only while the session captures: `start()` (each
 * encoder run) stops the running ones and starts one per live track — so one recorder never
 * spans a gap in the mixed file — and `stop()` (pause, stop) stops them all. The page's
 * `Date.now()` at `MediaRecorder.start()` is where a recorder's sound begins.
 */
import type { Page } from "puppeteer-core";
import { MAX_CHUNK_BYTES, type TrackContainer } from "../media/index.js";

/** Name of the binding the page sends chunks through. */
export const TRACKS_BINDING = "__meetrecTrackChunk";

/** Timeslice of the page's recorders, ms: a kill -9 loses at most about this much of each track. */
export const TRACK_TIMESLICE_MS = 1000;

/**
 * Opus bitrate of a track, bit/s: the page's recorder encodes the decoded remote sound again
 * (a MediaRecorder cannot copy the RTP payload); 48 kbit/s keeps speech and music of a meeting
 * (which arrives at ~32–64 kbit/s) without a second generation's audible loss.
 */
export const TRACK_BITRATE = 48_000;

/** What the page sends. `id` numbers a recorder within one page load. */
export type TrackMessage =
  | { type: "start"; id: number; track: string; mime: string; at: number }
  | { type: "data"; id: number; seq: number; data: string }
  | { type: "end"; id: number }
  | { type: "error"; id: number; track: string; message: string };

/**
 * The page script (plain JavaScript, see watcher.ts's PAGE_SCRIPT for why). The watcher's
 * wrapper calls `__meetrecOnTrack(pcNumber, trackEvent)` for every `track` event, so a track is
 * named as the watcher names it (`{pc}/{track id}`). `__meetrecTracks.start()` / `.stop()`
 * are called by {@link TrackTaps}.
 */
const PAGE_SCRIPT = `(() => {
  if (window.__meetrecTracks) return;
  const send = (m) => { const f = window[${JSON.stringify(TRACKS_BINDING)}]; if (typeof f === "function") Promise.resolve(f(m)).catch(() => undefined); };
  const mime = window.MediaRecorder ? ["audio/webm;codecs=opus", "audio/ogg;codecs=opus"].find((m) => MediaRecorder.isTypeSupported(m)) : undefined;
  const live = new Map();
  const recs = new Map();
  let on = false;
  let rid = 0;
  const b64 = (u8) => { let s = ""; for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000)); return btoa(s); };
  const end = (name) => { const r = recs.get(name); recs.delete(name); if (r && r.state !== "inactive") { try { r.stop(); } catch {} } };
  const begin = (name, track) => {
    if (!mime || recs.has(name) || track.readyState === "ended") return;
    const id = ++rid;
    let seq = 0;
    let q = Promise.resolve();
    let r;
    try { r = new MediaRecorder(new MediaStream([track]), { mimeType: mime, audioBitsPerSecond: ${TRACK_BITRATE} }); } catch (e) { send({ type: "error", id, track: name, message: String(e && e.message || e) }); return; }
    recs.set(name, r);
    r.ondataavailable = (ev) => { if (!ev.data || !ev.data.size) return; const s = ++seq; q = q.then(async () => send({ type: "data", id, seq: s, data: b64(new Uint8Array(await ev.data.arrayBuffer())) })).catch(() => undefined); };
    r.onstop = () => { q = q.then(() => send({ type: "end", id })); if (recs.get(name) === r) recs.delete(name); };
    r.onerror = (e) => send({ type: "error", id, track: name, message: String(e && e.error && e.error.message || "recorder error") });
    send({ type: "start", id, track: name, mime, at: Date.now() });
    r.start(${TRACK_TIMESLICE_MS});
  };
  Object.defineProperty(window, "__meetrecOnTrack", { value: (pc, e) => {
    if (!e || !e.track || e.track.kind !== "audio") return;
    const name = pc + "/" + e.track.id;
    live.set(name, e.track);
    e.track.addEventListener("ended", () => { live.delete(name); end(name); });
    if (on) begin(name, e.track);
  } });
  Object.defineProperty(window, "__meetrecTracks", { value: {
    start() { on = true; for (const n of [...recs.keys()]) end(n); for (const [n, t] of [...live]) { if (t.readyState === "ended") live.delete(n); else begin(n, t); } return !!mime; },
    stop() { on = false; for (const n of [...recs.keys()]) end(n); },
  } });
  setInterval(() => { for (const [n, t] of [...live]) if (t.readyState === "ended") { live.delete(n); end(n); } }, 1000);
})();`;

/** Where {@link TrackTaps} hands what the page records. Each call is awaited, in order per recorder. */
export interface TrackSink {
  /** A recorder began on `source` at wall clock `startedAtMs`: returns the file's number, or undefined to drop its chunks. */
  begin(source: string, container: TrackContainer, startedAtMs: number): Promise<number | undefined>;
  /** The next chunk of file `n`. */
  chunk(n: number, data: Buffer): Promise<void>;
  /** File `n` ended (its recorder stopped, or its page is gone). */
  end(n: number): Promise<void>;
  /** Something went wrong that the recording goes on without (logged, on the timeline). */
  problem(message: string): void;
}

/** The container of a recorder's MIME type (`audio/webm;codecs=opus` → `webm`); undefined for anything else. */
export function containerOf(mime: unknown): TrackContainer | undefined {
  if (typeof mime !== "string") return undefined;
  if (/^audio\/webm/i.test(mime)) return "webm";
  if (/^audio\/ogg/i.test(mime)) return "ogg";
  return undefined;
}

/** One recorder as the Node side follows it. */
interface Tap {
  /** Its file's number once begun (undefined: dropped). */
  n?: number;
  /** Its calls to the sink, in order. */
  chain: Promise<void>;
  seq: number;
}

/**
 * The Node side (see module doc). {@link attach} to every page the session opens, before it
 * navigates; {@link start} with each encoder run, {@link stop} at a pause or the stop, then
 * {@link drain}.
 */
export class TrackTaps {
  private page?: Page;
  private generation = 0;
  private readonly taps = new Map<string, Tap>();

  constructor(private readonly sink: TrackSink) {}

  /** Installs the binding and the page script on `page` (a relaunched browser's page: the previous page's files end). @throws puppeteer's error when the page is gone. */
  async attach(page: Page): Promise<void> {
    const gen = ++this.generation;
    for (const [key, tap] of this.taps) {
      if (!key.startsWith(`${gen}/`)) this.finish(key, tap);
    }
    this.page = page;
    await page.exposeFunction(TRACKS_BINDING, (m: TrackMessage) => { this.take(gen, m); });
    await page.evaluateOnNewDocument(PAGE_SCRIPT);
  }

  /** Starts a recorder per live remote audio track (ending running ones first). @returns false when the browser cannot record Opus. Never throws (a gone page: false). */
  async start(): Promise<boolean> {
    return await this.page?.evaluate("window.__meetrecTracks ? window.__meetrecTracks.start() : false").then((v) => v === true, () => false) ?? false;
  }

  /** Stops every recorder (their last chunks follow). Never throws. */
  async stop(): Promise<void> {
    await this.page?.evaluate("window.__meetrecTracks && window.__meetrecTracks.stop()").catch(() => undefined);
  }

  /**
   * Waits until every recorder has sent its end, at most `timeoutMs`, and every chunk is
   * handed over; recorders that did not end by then are ended here. Never throws.
   */
  async drain(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.taps.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    for (const [key, tap] of [...this.taps]) this.finish(key, tap);
    await Promise.all([...this.pendingChains]);
  }

  private readonly pendingChains = new Set<Promise<void>>();

  private queue(tap: Tap, fn: () => Promise<void>): void {
    tap.chain = tap.chain.then(fn).catch((err: unknown) => this.sink.problem(err instanceof Error ? err.message : String(err)));
    const c = tap.chain;
    this.pendingChains.add(c);
    void c.finally(() => this.pendingChains.delete(c));
  }

  private finish(key: string, tap: Tap): void {
    this.taps.delete(key);
    this.queue(tap, async () => { if (tap.n !== undefined) await this.sink.end(tap.n); });
  }

  /** One message from the page of generation `gen` (the binding's handler; tests feed it directly). */
  take(gen: number, m: TrackMessage): void {
    if (!m || typeof m !== "object" || !Number.isInteger(m.id)) return;
    const key = `${gen}/${m.id}`;
    if (m.type === "start") {
      const container = containerOf(m.mime);
      if (this.taps.has(key) || typeof m.track !== "string" || !Number.isFinite(m.at)) return;
      if (!container) {
        this.sink.problem(`the browser records ${String(m.mime).slice(0, 60)}, not Opus in WebM or Ogg; track ${m.track.slice(0, 100)} is not recorded on its own`);
        return;
      }
      const tap: Tap = { chain: Promise.resolve(), seq: 0 };
      this.taps.set(key, tap);
      this.queue(tap, async () => { tap.n = await this.sink.begin(m.track, container, m.at); });
      return;
    }
    const tap = this.taps.get(key);
    if (m.type === "error") {
      this.sink.problem(`recording track ${String(m.track).slice(0, 100)} on its own failed in the page: ${String(m.message).slice(0, 200)}`);
      return;
    }
    if (!tap) return;
    if (m.type === "end") {
      this.finish(key, tap);
      return;
    }
    if (m.type !== "data" || typeof m.data !== "string" || m.data.length > (MAX_CHUNK_BYTES * 4) / 3 + 4 || !(m.seq > tap.seq)) return;
    tap.seq = m.seq;
    const data = Buffer.from(m.data, "base64");
    this.queue(tap, async () => { if (tap.n !== undefined) await this.sink.chunk(tap.n, data); });
  }
}
