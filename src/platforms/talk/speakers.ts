/**
 * Who spoke when, as Nextcloud Talk's own recording server tells Talk
 * (shared/protocols/nextcloud-talk.md §6; nextcloud-talk-recording `docs/speaker-intervals.md`,
 * `Participant.py` `_setupSpeakerTracking` / `getSpeakerEvents` / `saveSpeakerEventsToFile`):
 * the tracker run in the Talk call page, the reader run at the stop, and the hidden sidecar
 * `.<recording base name> speaking times.json` that goes to Talk with the recording.
 *
 * Names: the note (and the Python recorder) look a session up in
 * `OCA.Talk.SimpleWebRTC.connection.joinedUsers[*]` by `sessionid`. Talk's own signaling code
 * (spreed `src/utils/signaling.js`, `processRoomEvent`) stores `true` there per session id, so
 * that lookup finds nothing in the Talk versions read. The tracker therefore also learns names
 * the way Talk's frontend does: from each participant's `nickChanged` data-channel message
 * (payload a name, or `{name, userid}`; spreed `webrtc.js`) and from the signaling server's
 * `usersJoined` entries (`{sessionid, userid, user: {displayname}}`). A joinedUsers entry that
 * is an object (as the note describes) wins.
 */
import { z } from "zod";
import { fileTimeAt } from "../../media/index.js";
import type { FilePeriod, SpeakerInterval } from "../../store/index.js";

/**
 * Installs the tracker in the call page, after `signalingJoinCallForRecording`. Evaluates to
 * `"ok"`, `"noSimpleWebRTC"` (nothing tracked) or `"noSignalingConnection"` (SIP participants,
 * whose speaking comes as participant flags over the signaling connection, not tracked).
 * State, as the reference recorder keeps it: `window.speakerEvents` (intervals in the order
 * they opened, `stopTimestamp` null while open) and `window._speakingParticipants` (session id
 * → start of its open interval).
 * - `channelMessage(peer, label, data)`: `data.type` `speaking` opens an interval for `peer.id`,
 *   `stoppedSpeaking` closes it (the label is not checked: with the MCU, Janus relays the
 *   messages on its own channel); `nickChanged` teaches the peer's name.
 * - `peerEnded(peer)`: closes the open interval of a `video` peer (a screen peer ending says
 *   nothing about its owner's voice).
 * - `connection` `participantFlagsChanged({sessionid, flags})`: flag bit 4 = a SIP participant
 *   speaking; `usersJoined([{sessionid, userid, user: {displayname}}])` teaches names.
 * Name and user id are fixed when an interval opens. A second `speaking` while open changes
 * nothing; a stop for a session without an open interval is ignored.
 */
export const TRACKER_SCRIPT = `(() => {
  const talk = window.OCA && window.OCA.Talk;
  const webrtc = talk && talk.SimpleWebRTC;
  if (!webrtc || typeof webrtc.on !== 'function') return 'noSimpleWebRTC';
  window.speakerEvents = [];
  window._speakingParticipants = {};
  const learnt = {};
  const connection = webrtc.connection;
  const learn = (sessionId, name, userId) => {
    if (typeof sessionId !== 'string') return;
    const had = learnt[sessionId] || { name: '', userId: '' };
    learnt[sessionId] = { name: name ? String(name) : had.name, userId: userId ? String(userId) : had.userId };
  };
  const who = (sessionId) => {
    const joined = (connection && connection.joinedUsers) || {};
    let name = '', userId = '';
    for (const key of Object.keys(joined)) {
      const u = joined[key];
      if (u && typeof u === 'object' && u.sessionid === sessionId) {
        name = String((u.user && u.user.displayname) || '');
        userId = String(u.userid || '');
        break;
      }
    }
    const l = learnt[sessionId] || { name: '', userId: '' };
    return { participantName: name || l.name, participantUserId: userId || l.userId };
  };
  const open = (sessionId, type) => {
    if (typeof sessionId !== 'string' || window._speakingParticipants[sessionId]) return;
    const now = Date.now();
    const info = who(sessionId);
    window._speakingParticipants[sessionId] = now;
    window.speakerEvents.push({ participantId: sessionId, participantName: info.participantName, participantUserId: info.participantUserId,
      startTimestamp: now, stopTimestamp: null, startType: type, stopType: null });
  };
  const close = (sessionId, type) => {
    if (typeof sessionId !== 'string' || !window._speakingParticipants[sessionId]) return;
    delete window._speakingParticipants[sessionId];
    for (let i = window.speakerEvents.length - 1; i >= 0; i--) {
      const e = window.speakerEvents[i];
      if (e.participantId === sessionId && e.stopTimestamp === null) { e.stopTimestamp = Date.now(); e.stopType = type; return; }
    }
  };
  webrtc.on('channelMessage', (peer, label, data) => {
    if (!peer || !data) return;
    if (data.type === 'speaking') open(peer.id, 'speaking');
    else if (data.type === 'stoppedSpeaking') close(peer.id, 'stoppedSpeaking');
    else if (data.type === 'nickChanged') {
      const p = data.payload;
      if (typeof p === 'string') learn(peer.id, p);
      else if (p && typeof p === 'object') learn(peer.id, p.name, p.userid);
    }
  });
  webrtc.on('peerEnded', (peer) => { if (peer && peer.type === 'video') close(peer.id, 'peerEnded'); });
  if (!connection || typeof connection.on !== 'function') return 'noSignalingConnection';
  connection.on('participantFlagsChanged', (e) => {
    if (!e) return;
    if ((e.flags & 4) > 0) open(e.sessionid, 'participantFlagsChanged');
    else close(e.sessionid, 'participantFlagsChanged');
  });
  connection.on('usersJoined', (users) => {
    for (const u of Array.isArray(users) ? users : []) if (u) learn(u.sessionid, u.user && u.user.displayname, u.userid);
  });
  return 'ok';
})()`;

/**
 * Reads and clears what the tracker collected; an interval still open ends now with
 * `stillSpeaking`. Destructive (open intervals are not reopened): run once, at the stop.
 */
export const READ_SCRIPT = `(() => {
  const events = Array.isArray(window.speakerEvents) ? window.speakerEvents : [];
  const now = Date.now();
  for (const e of events) if (e && e.stopTimestamp === null) { e.stopTimestamp = now; e.stopType = 'stillSpeaking'; }
  window.speakerEvents = [];
  window._speakingParticipants = {};
  return events;
})()`;

/** How the tracker saw an interval begin and end (§6.2 "Types"). */
export const START_TYPES = ["speaking", "participantFlagsChanged"] as const;
export const STOP_TYPES = ["stoppedSpeaking", "participantFlagsChanged", "peerEnded", "stillSpeaking"] as const;

/** One interval as the page hands it over ({@link READ_SCRIPT}); what does not match is dropped. */
const PageInterval = z.object({
  participantId: z.string().min(1).max(255),
  participantName: z.string().max(1000).catch(""),
  participantUserId: z.string().max(255).catch(""),
  startTimestamp: z.number().int().positive(),
  stopTimestamp: z.number().int().positive(),
  startType: z.enum(START_TYPES),
  stopType: z.enum(STOP_TYPES),
}).refine((i) => i.stopTimestamp >= i.startTimestamp, "stops before it starts");

/** Most intervals taken from one page (a day of a busy call is far fewer). */
const MAX_INTERVALS = 100_000;

/** What the page returned, as intervals; entries that are not intervals are counted in `dropped`. */
export function fromPage(raw: unknown): { intervals: SpeakerInterval[]; dropped: number } {
  const list = Array.isArray(raw) ? raw.slice(0, MAX_INTERVALS) : [];
  const intervals: SpeakerInterval[] = [];
  for (const item of list) {
    const p = PageInterval.safeParse(item);
    if (!p.success) continue;
    const i = p.data;
    intervals.push({ participantId: i.participantId, participantName: i.participantName, participantUserId: i.participantUserId,
      startMs: i.startTimestamp, stopMs: i.stopTimestamp, startType: i.startType, stopType: i.stopType });
  }
  return { intervals, dropped: (Array.isArray(raw) ? raw.length : 0) - intervals.length };
}

/**
 * The sidecar's name for a recording's file name (§6.2): `.` + the name without its
 * extension + ` speaking times.json`. `Recording 2026-10-02 17-37-20.webm` →
 * `.Recording 2026-10-02 17-37-20 speaking times.json`.
 */
export function speakingTimesFileName(recordingFileName: string): string {
  const dot = recordingFileName.lastIndexOf(".");
  return `.${dot > 0 ? recordingFileName.slice(0, dot) : recordingFileName} speaking times.json`;
}

/** The sidecar's JSON (§6.2): times in ms, absolute ones wall clock, relative ones from the recording's start. */
export const SpeakingTimesFile = z.strictObject({
  recordingStartTimestamp: z.number().int().nonnegative(),
  intervals: z.array(z.strictObject({
    /** The participant's signaling session id. */
    participantId: z.string(),
    participantName: z.string(),
    participantUserId: z.string(),
    startTimestamp: z.number().int(),
    stopTimestamp: z.number().int(),
    startType: z.enum(START_TYPES),
    stopType: z.enum(STOP_TYPES),
    startTimestampRelative: z.number().int().nonnegative(),
    stopTimestampRelative: z.number().int().nonnegative(),
  })),
});
export type SpeakingTimesFile = z.infer<typeof SpeakingTimesFile>;

/**
 * The sidecar of a recording whose file is laid out as `timeline` says (`RecordingFile.timeline`),
 * or undefined when nobody spoke (no file, as the reference recorder writes none).
 * `recordingStartTimestamp` is the wall clock at the file's time 0 (capture's start: the
 * encoder's origin, where the sound begins). Relative times are positions in the file
 * (`fileTimeAt`): wall time minus that start within the first capture period, with later
 * periods placed where finalize put them and times after the end at the end. Without a
 * timeline (a file finalized before meetrec kept one) the start is 0 and so is every relative
 * time, as the reference recorder writes them when it has no start. Intervals are in order of
 * their start.
 */
export function speakingTimesDocument(intervals: readonly SpeakerInterval[], timeline: readonly FilePeriod[] | undefined): SpeakingTimesFile | undefined {
  if (intervals.length === 0) return undefined;
  const known = timeline && timeline.length > 0 ? timeline : undefined;
  const rel = (ms: number) => (known ? Math.round(fileTimeAt(known, ms)) : 0);
  return {
    recordingStartTimestamp: known ? Math.round(known[0].wallMs) : 0,
    intervals: [...intervals].sort((a, b) => a.startMs - b.startMs).map((i) => ({
      participantId: i.participantId, participantName: i.participantName, participantUserId: i.participantUserId,
      startTimestamp: Math.round(i.startMs), stopTimestamp: Math.round(i.stopMs),
      startType: (START_TYPES as readonly string[]).includes(i.startType) ? (i.startType as (typeof START_TYPES)[number]) : "speaking",
      stopType: (STOP_TYPES as readonly string[]).includes(i.stopType) ? (i.stopType as (typeof STOP_TYPES)[number]) : "stillSpeaking",
      startTimestampRelative: rel(i.startMs), stopTimestampRelative: rel(i.stopMs),
    })),
  };
}

/** The sidecar as bytes: JSON with 2-space indent (as the reference recorder's `json.dump(…, indent=2)`). */
export function speakingTimesJson(doc: SpeakingTimesFile): string {
  return JSON.stringify(doc, null, 2);
}
