/**
 * The store through Kysely: SQLite (better-sqlite3) on one machine, PostgreSQL (pg) for a
 * cluster — the same queries and migrations on both. Every status change updates the row and
 * appends its event in one transaction; read-modify-write transactions lock the row on
 * PostgreSQL (`SELECT … FOR UPDATE`); on SQLite a status change that lost the race to another
 * connection is retried, so it reads the row anew.
 *
 * Over 300 lines: every query and migration of the store, so both engines run the same code.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SQLite from "better-sqlite3";
import { CamelCasePlugin, Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Generated, type Insertable, type Migration, type SelectQueryBuilder, type Transaction } from "kysely";
import pg from "pg";
import { MeetrecError } from "../util/errors.js";
import { sleep } from "../util/process.js";
import {
  TERMINAL, transitionAllowed, type Delivery, type DeliveryAttempt, type DeliveryKind, type DeliveryStatus, type Recording, type RecordingEvent,
  DELIVERY_FAILED, type FrameCounts, type MeetingSeen, type RecordingFile, type RecordingOptions, type RecordingStatus, type SpeakerInterval, type TransitionPatch,
} from "./types.js";
import type { EventOf, TimelineEvent } from "./timeline.js";

interface RecordingsTable {
  id: string;
  backend: string;
  status: RecordingStatus;
  options: string;
  metadata: string;
  endReason: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  updatedAt: string;
  capturedMs: number;
  segmentCount: number;
  bytes: number;
  periodCount: number;
  file: string | null;
  /** Cluster: the worker that holds the recording now, and the lease epoch it holds it under. */
  worker: string | null;
  epoch: number;
  /** A stop asked for while the recording was live (`stopped` | `deleted` | …), for whichever worker holds it. */
  stopRequested: string | null;
  /** JSON of {@link MeetingSeen}, null before the page was watched. */
  meeting: string | null;
  /** 1 while capturing is paused at the platform's request (`POST …/pause`), else 0. */
  paused: number;
  /** JSON of {@link FrameCounts} over the durable segments, null before the first (and for sound only). */
  frames: string | null;
}

interface EventsTable {
  id: Generated<number>;
  recordingId: string;
  at: string;
  type: string;
  status: string | null;
  reason: string | null;
  message: string | null;
  data: string | null;
}

interface DeliveriesTable {
  id: string;
  recordingId: string;
  target: string;
  kind: DeliveryKind;
  payload: string | null;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  nextAttemptAt: string;
  createdAt: string;
  updatedAt: string;
  firstAttemptAt: string | null;
  redeliverAt: string | null;
}

interface DeliveryAttemptsTable {
  id: Generated<number>;
  deliveryId: string;
  recordingId: string;
  attempt: number;
  at: string;
  outcome: "ok" | "error";
  message: string | null;
  nextAttemptAt: string | null;
}

/** Accepted Nextcloud Talk request randoms, remembered to refuse replays (see {@link RecordingStore.rememberTalkRandom}). */
interface TalkRandomsTable {
  backend: string;
  random: string;
  /** When it was accepted (ISO 8601). */
  seenAt: string;
}

/** Speaking stretches of a recording's participants (see {@link RecordingStore.addSpeakerIntervals}); times in ms since the epoch. */
interface SpeakerIntervalsTable {
  id: Generated<number>;
  recordingId: string;
  participantId: string;
  participantName: string;
  participantUserId: string;
  startMs: number;
  stopMs: number;
  startType: string;
  stopType: string;
}

/** The container a Nextcloud Talk instance last took a recording in (see {@link RecordingStore.rememberTalkContainer}). */
interface TalkContainersTable {
  backend: string;
  /** Talk's base URL without trailing `/`. */
  url: string;
  container: string;
  /** When it was last confirmed (ISO 8601). */
  decidedAt: string;
}

interface Database {
  recordings: RecordingsTable;
  events: EventsTable;
  deliveries: DeliveriesTable;
  deliveryAttempts: DeliveryAttemptsTable;
  talkRandoms: TalkRandomsTable;
  speakerIntervals: SpeakerIntervalsTable;
  talkContainers: TalkContainersTable;
}

/** Which database a store runs on. */
export type Dialect = "sqlite" | "postgres";

/**
 * Schema migrations, in order. Written in Kysely's builder so they run on SQLite and
 * PostgreSQL; only auto-increment keys differ (`integer … autoincrement` / `serial`).
 */
function migrations(dialect: Dialect): Record<string, Migration> {
  const serialId = <T extends { addColumn: (...a: any[]) => T }>(t: T): T => dialect === "postgres"
    ? t.addColumn("id", "serial", (c: any) => c.primaryKey())
    : t.addColumn("id", "integer", (c: any) => c.primaryKey().autoIncrement());
  return {
  "0001_init": {
    async up(db: Kysely<unknown>) {
      await db.schema.createTable("recordings")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("backend", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("options", "text", (c) => c.notNull())
        .addColumn("metadata", "text", (c) => c.notNull())
        .addColumn("end_reason", "text")
        .addColumn("error_code", "text")
        .addColumn("error_message", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("started_at", "text")
        .addColumn("ended_at", "text")
        .addColumn("updated_at", "text", (c) => c.notNull())
        .addColumn("captured_ms", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("segment_count", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("bytes", "bigint", (c) => c.notNull().defaultTo(0))
        .addColumn("period_count", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("file", "text")
        .execute();
      await db.schema.createIndex("recordings_status").on("recordings").column("status").execute();
      await serialId(db.schema.createTable("events"))
        .addColumn("recording_id", "text", (c) => c.notNull())
        .addColumn("at", "text", (c) => c.notNull())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("status", "text")
        .addColumn("reason", "text")
        .addColumn("message", "text")
        .addColumn("data", "text")
        .execute();
      await db.schema.createIndex("events_recording").on("events").column("recording_id").execute();
    },
  },
  "0002_deliveries": {
    async up(db: Kysely<unknown>) {
      await db.schema.createTable("deliveries")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("recording_id", "text", (c) => c.notNull())
        .addColumn("target", "text", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("payload", "text")
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("last_error", "text")
        .addColumn("next_attempt_at", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("deliveries_status").on("deliveries").columns(["status", "next_attempt_at"]).execute();
      await db.schema.createIndex("deliveries_recording").on("deliveries").column("recording_id").execute();
      await serialId(db.schema.createTable("delivery_attempts"))
        .addColumn("delivery_id", "text", (c) => c.notNull())
        .addColumn("recording_id", "text", (c) => c.notNull())
        .addColumn("attempt", "integer", (c) => c.notNull())
        .addColumn("at", "text", (c) => c.notNull())
        .addColumn("outcome", "text", (c) => c.notNull())
        .addColumn("message", "text")
        .addColumn("next_attempt_at", "text")
        .execute();
      await db.schema.createIndex("delivery_attempts_delivery").on("delivery_attempts").column("delivery_id").execute();
    },
  },
  "0003_cluster": {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable("recordings").addColumn("worker", "text").execute();
      await db.schema.alterTable("recordings").addColumn("epoch", "integer", (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.alterTable("recordings").addColumn("stop_requested", "text").execute();
    },
  },
  "0004_talk_randoms": {
    async up(db: Kysely<unknown>) {
      await db.schema.createTable("talk_randoms")
        .addColumn("backend", "text", (c) => c.notNull())
        .addColumn("random", "text", (c) => c.notNull())
        .addColumn("seen_at", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("talk_randoms_pk", ["backend", "random"])
        .execute();
      await db.schema.createIndex("talk_randoms_seen_at").on("talk_randoms").column("seen_at").execute();
    },
  },
  "0005_delivery_give_up": {
    async up(db: Kysely<unknown>) {
      // The give-up clock (delivery.giveUpAfterSeconds) and the one pending redelivery per recording.
      await db.schema.alterTable("deliveries").addColumn("first_attempt_at", "text").execute();
      await db.schema.alterTable("deliveries").addColumn("redeliver_at", "text").execute();
      await sql`update deliveries set first_attempt_at = (select min(a.at) from delivery_attempts a where a.delivery_id = deliveries.id) where attempts > 0`.execute(db);
    },
  },
  "0006_speakers_and_talk_containers": {
    async up(db: Kysely<unknown>) {
      await serialId(db.schema.createTable("speaker_intervals"))
        .addColumn("recording_id", "text", (c) => c.notNull())
        .addColumn("participant_id", "text", (c) => c.notNull())
        .addColumn("participant_name", "text", (c) => c.notNull())
        .addColumn("participant_user_id", "text", (c) => c.notNull())
        .addColumn("start_ms", "bigint", (c) => c.notNull())
        .addColumn("stop_ms", "bigint", (c) => c.notNull())
        .addColumn("start_type", "text", (c) => c.notNull())
        .addColumn("stop_type", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("speaker_intervals_recording").on("speaker_intervals").column("recording_id").execute();
      await db.schema.createTable("talk_containers")
        .addColumn("backend", "text", (c) => c.notNull())
        .addColumn("url", "text", (c) => c.notNull())
        .addColumn("container", "text", (c) => c.notNull())
        .addColumn("decided_at", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("talk_containers_pk", ["backend", "url"])
        .execute();
    },
  },
  "0007_meeting_seen": {
    async up(db: Kysely<unknown>) {
      // What the recorder's media watcher saw of the meeting (participants, media flowing), for the view.
      await db.schema.alterTable("recordings").addColumn("meeting", "text").execute();
    },
  },
  "0008_paused": {
    async up(db: Kysely<unknown>) {
      // Capturing paused at the platform's request; whichever worker holds the recording follows it.
      await db.schema.alterTable("recordings").addColumn("paused", "integer", (c) => c.notNull().defaultTo(0)).execute();
    },
  },
  "0009_frames": {
    async up(db: Kysely<unknown>) {
      // The video encoder's frame counts (encoded, duplicated, dropped), summed over the manifest.
      await db.schema.alterTable("recordings").addColumn("frames", "text").execute();
    },
  },
  };
}

function toRecording(r: RecordingsTable): Recording {
  return {
    id: r.id,
    backend: r.backend,
    status: r.status,
    options: JSON.parse(r.options) as RecordingOptions,
    metadata: JSON.parse(r.metadata) as Record<string, unknown>,
    endReason: r.endReason as Recording["endReason"],
    error: r.errorCode ? { code: r.errorCode, message: r.errorMessage ?? "" } : null,
    createdAt: r.createdAt,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    updatedAt: r.updatedAt,
    capturedMs: Number(r.capturedMs),
    segmentCount: Number(r.segmentCount),
    bytes: Number(r.bytes),
    periodCount: Number(r.periodCount),
    file: r.file ? JSON.parse(r.file) : null,
    worker: r.worker,
    meeting: r.meeting ? JSON.parse(r.meeting) as MeetingSeen : null,
    frames: r.frames ? JSON.parse(r.frames) as FrameCounts : null,
    paused: Number(r.paused) === 1,
  };
}

/** The row of a non-status timeline event of `recordingId` at `at` (ISO 8601). */
function eventRow(recordingId: string, at: string, e: TimelineEvent): Insertable<EventsTable> {
  return { recordingId, at, type: e.type, status: null, reason: null, message: e.message, data: "data" in e ? JSON.stringify(e.data) : null };
}

function toEvent(e: Omit<EventsTable, "id"> & { id: number }): RecordingEvent {
  return { ...e, status: e.status as RecordingStatus | null, data: e.data ? JSON.parse(e.data) : null };
}

function toDelivery(r: DeliveriesTable): Delivery {
  return {
    id: r.id, recordingId: r.recordingId, target: r.target, kind: r.kind, payload: r.payload ? JSON.parse(r.payload) : null,
    status: r.status, attempts: Number(r.attempts), lastError: r.lastError, nextAttemptAt: r.nextAttemptAt, createdAt: r.createdAt, updatedAt: r.updatedAt,
    firstAttemptAt: r.firstAttemptAt ?? null, redeliverAt: r.redeliverAt ?? null,
  };
}

/** Progress counters updated after every durable segment. */
export interface Progress {
  capturedMs: number;
  segmentCount: number;
  bytes: number;
  periodCount: number;
  /** Video: the encoder's frame counts over the durable segments. */
  frames?: FrameCounts;
}

/** The recordings store. All methods are safe to call concurrently (SQLite serializes writes). */
/** Called after a status change has been committed, with the recording as it is now. */
export type TransitionListener = (rec: Recording, from: RecordingStatus) => void;

export class RecordingStore {
  private readonly listeners: TransitionListener[] = [];
  private constructor(private readonly db: Kysely<Database>, readonly dialect: Dialect) {}

  /**
   * Runs `fn` in a transaction. On SQLite, a transaction that read the row and then finds another
   * connection (another process on the same file) writing fails with `SQLITE_BUSY` at its first
   * write, before it changed anything — SQLite does not wait there, since its snapshot is stale:
   * it is retried from the start (so it reads the row anew), for up to 5 s like `busy_timeout`.
   * @throws whatever `fn` throws; the SQLite error once the 5 s are over.
   */
  private async writeTx<T>(fn: (tx: Transaction<Database>) => Promise<T>): Promise<T> {
    const deadline = Date.now() + 5000;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction().execute(fn);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        const busy = this.dialect === "sqlite" && typeof code === "string" && code.startsWith("SQLITE_BUSY");
        if (!busy || Date.now() >= deadline) throw err;
        await sleep(Math.min(2 ** attempt, 50));
      }
    }
  }

  /** `q` with `FOR UPDATE` on PostgreSQL (SQLite has no row locks; see {@link writeTx}). */
  private locked<DB, TB extends keyof DB, O>(q: SelectQueryBuilder<DB, TB, O>): SelectQueryBuilder<DB, TB, O> {
    return this.dialect === "postgres" ? q.forUpdate() : q;
  }

  private static async migrate(db: Kysely<Database>, dialect: Dialect, where: string): Promise<RecordingStore> {
    const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations(dialect) } });
    const { error } = await migrator.migrateToLatest();
    if (error) {
      await db.destroy();
      throw new MeetrecError("store_failed", `Database migration failed for ${where}: ${(error as Error).message}`, { cause: error });
    }
    return new RecordingStore(db, dialect);
  }

  /**
   * Connects to PostgreSQL at `url` (`postgres://user:pass@host:5432/db`) and applies pending
   * migrations (concurrent starts are serialized by Kysely's migration lock).
   * @throws MeetrecError `store_failed` (the message never contains the password).
   */
  static async openPostgres(url: string): Promise<RecordingStore> {
    const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5000 });
    pool.on("error", () => undefined); // an idle client lost: the pool replaces it
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), plugins: [new CamelCasePlugin()] });
    const where = url.replace(/\/\/[^@/]*@/, "//***@");
    try {
      await sql`select 1`.execute(db);
    } catch (err) {
      await db.destroy();
      throw new MeetrecError("store_failed", `Cannot connect to PostgreSQL at ${where}: ${(err as Error).message}`, { cause: err });
    }
    return RecordingStore.migrate(db, "postgres", where);
  }

  /** Registers `fn` to be told of every committed status change (it must not throw). */
  onTransition(fn: TransitionListener): void {
    this.listeners.push(fn);
  }

  /**
   * Opens (creating if needed) the SQLite database at `file` (`:memory:` for tests) and
   * applies pending migrations. @throws MeetrecError `store_failed`.
   */
  static async openSqlite(file: string): Promise<RecordingStore> {
    if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
    const sqlite = new SQLite(file);
    sqlite.pragma("journal_mode = WAL");
    sqlite.pragma("synchronous = FULL");
    sqlite.pragma("busy_timeout = 5000");
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }), plugins: [new CamelCasePlugin()] });
    return RecordingStore.migrate(db, "sqlite", file);
  }

  /** Inserts a new `queued` recording and its first event. */
  async create(input: { id: string; backend: string; options: RecordingOptions; metadata: Record<string, unknown> }): Promise<Recording> {
    const now = new Date().toISOString();
    const row: RecordingsTable = {
      id: input.id, backend: input.backend, status: "queued", options: JSON.stringify(input.options),
      metadata: JSON.stringify(input.metadata), endReason: null, errorCode: null, errorMessage: null,
      createdAt: now, startedAt: null, endedAt: null, updatedAt: now, capturedMs: 0, segmentCount: 0, bytes: 0, periodCount: 0, file: null,
      worker: null, epoch: 0, stopRequested: null, meeting: null, paused: 0, frames: null,
    };
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto("recordings").values(row).execute();
      await tx.insertInto("events").values({ recordingId: input.id, at: now, type: "status", status: "queued", reason: "created", message: null, data: null }).execute();
    });
    return toRecording(row);
  }

  /** The recording, or undefined. */
  async get(id: string): Promise<Recording | undefined> {
    const r = await this.db.selectFrom("recordings").selectAll().where("id", "=", id).executeTakeFirst();
    return r ? toRecording(r) : undefined;
  }

  /** Recordings, newest first, optionally of one status / backend. */
  async list(opts: { status?: RecordingStatus; backend?: string; limit?: number } = {}): Promise<Recording[]> {
    let q = this.db.selectFrom("recordings").selectAll().orderBy("createdAt", "desc").limit(opts.limit ?? 100);
    if (opts.status) q = q.where("status", "=", opts.status);
    if (opts.backend) q = q.where("backend", "=", opts.backend);
    return (await q.execute()).map(toRecording);
  }

  /** Recordings not in a terminal status, oldest first (what a restart must pick up). */
  async listUnfinished(): Promise<Recording[]> {
    const rows = await this.db.selectFrom("recordings").selectAll().where("status", "not in", [...TERMINAL]).orderBy("createdAt").execute();
    return rows.map(toRecording);
  }

  /**
   * Moves `id` to `to`, storing the patch and a `status` event in one transaction.
   * @throws MeetrecError `not_found`, or `conflict` when the transition is not allowed.
   */
  async transition(id: string, to: RecordingStatus, patch: TransitionPatch = {}): Promise<Recording> {
    let from: RecordingStatus = "queued";
    const rec = await this.writeTx(async (tx) => {
      const cur = await this.locked(tx.selectFrom("recordings").selectAll().where("id", "=", id)).executeTakeFirst();
      if (!cur) throw new MeetrecError("not_found", `No recording ${id}`);
      from = cur.status;
      return this.applyTransition(tx, cur, to, patch);
    });
    for (const fn of this.listeners) fn(rec, from);
    return rec;
  }

  /** The body of {@link transition}, inside `tx`, on the locked row `cur`. */
  private async applyTransition(tx: Transaction<Database>, cur: RecordingsTable, to: RecordingStatus, patch: TransitionPatch): Promise<Recording> {
    const id = cur.id;
    if (!transitionAllowed({ status: cur.status, errorCode: cur.errorCode, hasFile: cur.file !== null }, to)) {
      throw new MeetrecError("conflict", `Recording ${id} cannot go from ${cur.status}${cur.errorCode ? ` (${cur.errorCode})` : ""} to ${to}`);
    }
    const now = new Date().toISOString();
    const upd: Partial<RecordingsTable> = { status: to, updatedAt: now };
    if (to === "starting") upd.startedAt = now;
    if (TERMINAL.includes(to)) upd.endedAt = now;
    // Delivered again after its delivery was given up: no longer ended, no longer in error.
    if (cur.status === "failed") { upd.endedAt = null; upd.errorCode = null; upd.errorMessage = null; }
    if (patch.endReason) upd.endReason = patch.endReason;
    if (patch.error) { upd.errorCode = patch.error.code; upd.errorMessage = patch.error.message; }
    if (patch.file) upd.file = JSON.stringify(patch.file);
    await tx.updateTable("recordings").set(upd).where("id", "=", id).execute();
    await tx.insertInto("events").values({
      recordingId: id, at: now, type: "status", status: to, reason: patch.reason ?? null,
      message: patch.message ?? patch.error?.message ?? null, data: patch.data ? JSON.stringify(patch.data) : null,
    }).execute();
    return toRecording({ ...cur, ...upd } as RecordingsTable);
  }

  /** Merges `patch` into the recording's file description (after a delivery placed a copy somewhere). */
  async mergeFile(id: string, patch: Partial<RecordingFile>): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const cur = await this.locked(tx.selectFrom("recordings").select("file").where("id", "=", id)).executeTakeFirst();
      if (!cur?.file) return;
      await tx.updateTable("recordings").set({ file: JSON.stringify({ ...JSON.parse(cur.file), ...patch }) }).where("id", "=", id).execute();
    });
  }

  /** Ended recordings of `backend` that ended before `before` and still have a file. */
  async expired(backend: string, before: Date): Promise<Recording[]> {
    const rows = await this.db.selectFrom("recordings").selectAll().where("backend", "=", backend)
      .where("status", "in", [...TERMINAL]).where("endedAt", "<", before.toISOString()).where("file", "is not", null).execute();
    return rows.map(toRecording);
  }

  /** Forgets the file (its media was removed) and gives up the recording's unfinished deliveries, with `reason`. */
  async dropFile(id: string, reason: string): Promise<void> {
    const now = new Date().toISOString();
    await this.db.transaction().execute(async (tx) => {
      await tx.updateTable("recordings").set({ file: null, updatedAt: now }).where("id", "=", id).execute();
      await tx.updateTable("deliveries").set({ status: "failed", lastError: reason, redeliverAt: null, updatedAt: now }).where("recordingId", "=", id).where("status", "=", "pending").execute();
    });
  }

  /** Merges `patch` into the recording's metadata (shallow). */
  async mergeMetadata(id: string, patch: Record<string, unknown>): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const cur = await this.locked(tx.selectFrom("recordings").select("metadata").where("id", "=", id)).executeTakeFirst();
      if (!cur) return;
      const next = { ...(JSON.parse(cur.metadata) as Record<string, unknown>), ...patch };
      await tx.updateTable("recordings").set({ metadata: JSON.stringify(next), updatedAt: new Date().toISOString() }).where("id", "=", id).execute();
    });
  }

  /**
   * Changes the metadata with a JSON merge patch (RFC 7396, one level): a key set to `null` is
   * removed, any other value replaces the key's. `check` sees the recording as it is (read under
   * the row lock) with the metadata as it would be, and may throw to refuse: then nothing is
   * changed. A `metadata_changed` event names the keys set and removed (not their values).
   * Returns the recording as it is now.
   * @throws MeetrecError `not_found`; whatever `check` throws.
   */
  async patchMetadata(id: string, patch: Record<string, unknown>, check: (rec: Recording, next: Record<string, unknown>) => void): Promise<Recording> {
    return this.db.transaction().execute(async (tx) => {
      const cur = await this.locked(tx.selectFrom("recordings").selectAll().where("id", "=", id)).executeTakeFirst();
      if (!cur) throw new MeetrecError("not_found", `No recording ${id}`);
      const rec = toRecording(cur);
      const next = { ...rec.metadata };
      for (const [k, v] of Object.entries(patch)) {
        if (v === null) delete next[k];
        else next[k] = v;
      }
      check(rec, next);
      const now = new Date().toISOString();
      const set = Object.keys(patch).filter((k) => patch[k] !== null);
      const removed = Object.keys(patch).filter((k) => patch[k] === null && k in rec.metadata);
      await tx.updateTable("recordings").set({ metadata: JSON.stringify(next), updatedAt: now }).where("id", "=", id).execute();
      await tx.insertInto("events").values(eventRow(id, now, {
        type: "metadata_changed",
        message: `Metadata changed: ${[...set.map((k) => `${k} set`), ...removed.map((k) => `${k} removed`)].join(", ") || "nothing"}`,
        data: { set, removed },
      })).execute();
      return { ...rec, metadata: next, updatedAt: now };
    });
  }

  /** Updates the progress counters. */
  async progress(id: string, p: Progress): Promise<void> {
    const { frames, ...counters } = p;
    await this.db.updateTable("recordings").set({ ...counters, ...(frames ? { frames: JSON.stringify(frames) } : {}), updatedAt: new Date().toISOString() }).where("id", "=", id).execute();
  }

  /**
   * Asks recording `id` to pause capturing (`true`) or to capture again; only a recording whose
   * status is `recording` can. Whoever holds it follows the flag (recorder/job.ts).
   * @returns the recording as it is now, or undefined when it is not `recording`.
   */
  async setPaused(id: string, paused: boolean): Promise<Recording | undefined> {
    const res = await this.db.updateTable("recordings").set({ paused: paused ? 1 : 0, updatedAt: new Date().toISOString() })
      .where("id", "=", id).where("status", "=", "recording").executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return undefined;
    return this.get(id);
  }

  /** Stores what the recorder saw of the meeting last (its media watcher's state). */
  async meetingSeen(id: string, m: MeetingSeen): Promise<void> {
    await this.db.updateTable("recordings").set({ meeting: JSON.stringify(m) }).where("id", "=", id).execute();
  }

  /** Appends a non-status event (its `data` as the catalogue, timeline.ts, says for its type) to the timeline of `id`. */
  async addEvent(id: string, event: TimelineEvent): Promise<void> {
    await this.db.insertInto("events").values(eventRow(id, new Date().toISOString(), event)).execute();
  }

  /** The timeline of `id`, oldest first. */
  async events(id: string): Promise<RecordingEvent[]> {
    const rows = await this.db.selectFrom("events").selectAll().where("recordingId", "=", id).orderBy("id").execute();
    return rows.map(toEvent);
  }

  /** Deletes the recording, its events, deliveries and speaker intervals. */
  async delete(id: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom("events").where("recordingId", "=", id).execute();
      await tx.deleteFrom("speakerIntervals").where("recordingId", "=", id).execute();
      await tx.deleteFrom("deliveryAttempts").where("recordingId", "=", id).execute();
      await tx.deleteFrom("deliveries").where("recordingId", "=", id).execute();
      await tx.deleteFrom("recordings").where("id", "=", id).execute();
    });
  }

  /** Queues a delivery, due now. */
  async addDelivery(d: { recordingId: string; target: string; kind: DeliveryKind; payload?: unknown }): Promise<Delivery> {
    const now = new Date().toISOString();
    const row: DeliveriesTable = {
      id: randomUUID(), recordingId: d.recordingId, target: d.target, kind: d.kind, payload: d.payload === undefined ? null : JSON.stringify(d.payload),
      status: "pending", attempts: 0, lastError: null, nextAttemptAt: now, createdAt: now, updatedAt: now, firstAttemptAt: null, redeliverAt: null,
    };
    await this.db.insertInto("deliveries").values(row).execute();
    return toDelivery(row);
  }

  /** Pending deliveries, oldest first (the caller picks the due ones, one per recording + target). */
  async pendingDeliveries(limit = 500): Promise<Delivery[]> {
    const rows = await this.db.selectFrom("deliveries").selectAll().where("status", "=", "pending").orderBy("createdAt").orderBy("id").limit(limit).execute();
    return rows.map(toDelivery);
  }

  /** Deliveries of a recording, oldest first. */
  async deliveries(recordingId: string): Promise<Delivery[]> {
    const rows = await this.db.selectFrom("deliveries").selectAll().where("recordingId", "=", recordingId).orderBy("createdAt").orderBy("id").execute();
    return rows.map(toDelivery);
  }

  /**
   * Attempts of a recording's deliveries, oldest first; with `lastPerDelivery`, only the last
   * that many of each delivery (a delivery's count of all attempts is its `attempts`).
   */
  async deliveryAttempts(recordingId: string, lastPerDelivery?: number): Promise<DeliveryAttempt[]> {
    const toAttempt = (r: Omit<DeliveryAttemptsTable, "id"> & { id: number }): DeliveryAttempt => ({
      id: Number(r.id), deliveryId: r.deliveryId, recordingId: r.recordingId, attempt: Number(r.attempt), at: r.at, outcome: r.outcome, message: r.message, nextAttemptAt: r.nextAttemptAt,
    });
    if (lastPerDelivery === undefined) {
      const rows = await this.db.selectFrom("deliveryAttempts").selectAll().where("recordingId", "=", recordingId).orderBy("id").execute();
      return rows.map(toAttempt);
    }
    const ranked = this.db.selectFrom("deliveryAttempts").selectAll()
      .select((eb) => eb.fn.agg<number>("row_number").over((ob) => ob.partitionBy("deliveryId").orderBy("id", "desc")).as("rank"))
      .where("recordingId", "=", recordingId).as("ranked");
    const rows = await this.db.selectFrom(ranked).selectAll().where("rank", "<=", lastPerDelivery).orderBy("id").execute();
    return rows.map(toAttempt);
  }

  /**
   * Stores the outcome of one attempt: `ok` → succeeded; `error` → stays pending, due again in
   * `retryInMs` but never later than `giveUpAfterMs` after the first attempt, or `failed`
   * (given up) once that time has passed — then `givenUp(delivery)`, if given, is appended to
   * the recording's timeline in the same transaction. The first attempt (since the delivery was
   * created or redelivered) starts the give-up clock (`firstAttemptAt`). `startedAt` (when the
   * attempt began, before it read the recording) settles a pending redelivery: one asked for
   * before it is done; one asked for while it ran (which may have read what the redelivery was
   * meant to correct) keeps the delivery pending and due, whatever the outcome.
   */
  async recordAttempt(
    id: string,
    outcome: { ok: true; message?: string } | { ok: false; message: string; retryInMs: number; giveUpAfterMs?: number },
    opts: { startedAt?: Date; givenUp?: (d: Delivery) => EventOf<"delivery_given_up"> } = {},
  ): Promise<Delivery> {
    return this.db.transaction().execute(async (tx) => {
      const cur = await this.locked(tx.selectFrom("deliveries").selectAll().where("id", "=", id)).executeTakeFirstOrThrow();
      const nowMs = Date.now();
      const now = new Date(nowMs).toISOString();
      const startedAt = (opts.startedAt ?? new Date(nowMs)).toISOString();
      const firstAttemptAt = cur.firstAttemptAt ?? startedAt;
      const attempt = cur.attempts + 1;
      let status: DeliveryStatus = "succeeded";
      let next: string | null = null;
      if (!outcome.ok) {
        const deadline = outcome.giveUpAfterMs === undefined ? Infinity : Date.parse(firstAttemptAt) + outcome.giveUpAfterMs;
        // The last retry is at the deadline, so a delivery is given up on time, not up to one backoff later.
        status = nowMs >= deadline ? "failed" : "pending";
        next = status === "pending" ? new Date(Math.min(nowMs + outcome.retryInMs, deadline)).toISOString() : null;
      }
      const redeliverLater = cur.redeliverAt !== null && cur.redeliverAt >= startedAt;
      if (redeliverLater) { status = "pending"; next = cur.redeliverAt; }
      const upd: Partial<DeliveriesTable> = {
        attempts: attempt, updatedAt: now, status, firstAttemptAt,
        lastError: outcome.ok ? null : outcome.message,
        redeliverAt: redeliverLater ? cur.redeliverAt : null,
        ...(next ? { nextAttemptAt: next } : {}),
      };
      await tx.updateTable("deliveries").set(upd).where("id", "=", id).execute();
      await tx.insertInto("deliveryAttempts").values({
        deliveryId: id, recordingId: cur.recordingId, attempt, at: now, outcome: outcome.ok ? "ok" : "error",
        message: outcome.message ?? null, nextAttemptAt: next,
      }).execute();
      const after = toDelivery({ ...cur, ...upd } as DeliveriesTable);
      if (status === "failed" && opts.givenUp) {
        await tx.insertInto("events").values(eventRow(cur.recordingId, now, opts.givenUp(after))).execute();
      }
      return after;
    });
  }

  /**
   * A redelivery by hand, atomically: every unfinished delivery of the recording (pending or
   * given up) and, for each of `fileTargets`, its latest delivery (or a new one when it has
   * none) becomes due now, marked as this redelivery's (`redeliverAt`), with its give-up clock
   * restarted. A `redeliver_requested` event lists the targets. A recording that failed because
   * its delivery was given up (`delivery_failed`, with its file) goes back to `delivering` in
   * the same transaction (a status event; listeners are told after the commit). Returns how many
   * deliveries are due (0: nothing to do, nothing changed).
   * @throws MeetrecError `not_found`; `conflict` while an earlier redelivery of the recording
   * has not been attempted yet (nothing changed).
   */
  async redeliver(recordingId: string, fileTargets: readonly string[]): Promise<number> {
    let reopened: Recording | undefined;
    const n = await this.db.transaction().execute(async (tx) => {
      const rec = await this.locked(tx.selectFrom("recordings").selectAll().where("id", "=", recordingId)).executeTakeFirst();
      if (!rec) throw new MeetrecError("not_found", `No recording ${recordingId}`);
      const rows = await tx.selectFrom("deliveries").selectAll().where("recordingId", "=", recordingId).orderBy("createdAt").orderBy("id").execute();
      const waiting = rows.filter((r) => r.redeliverAt !== null && r.status === "pending");
      if (waiting.length > 0) {
        throw new MeetrecError("conflict", `A redelivery of recording ${recordingId} is already pending (asked at ${waiting[0].redeliverAt}; ${waiting.map((r) => r.target).join(", ")} not attempted yet). Wait until it has been attempted (deliveries in GET /v1/recordings/${recordingId}), then ask again.`);
      }
      const due = new Set(rows.filter((r) => r.status !== "succeeded").map((r) => r.id));
      const add: string[] = [];
      for (const target of fileTargets) {
        const mine = rows.filter((r) => r.target === target && r.kind === "file");
        if (mine.some((r) => due.has(r.id))) continue;
        if (mine.length > 0) due.add(mine[mine.length - 1].id);
        else add.push(target);
      }
      if (due.size === 0 && add.length === 0) return 0;
      if (rec.status === "failed" && rec.errorCode === DELIVERY_FAILED && rec.file !== null) {
        reopened = await this.applyTransition(tx, rec, "delivering", { reason: "redeliver", message: "Delivering the file again by hand after its delivery was given up" });
      }
      const now = new Date().toISOString();
      if (due.size > 0) {
        await tx.updateTable("deliveries").set({ status: "pending", nextAttemptAt: now, redeliverAt: now, firstAttemptAt: null, updatedAt: now })
          .where("id", "in", [...due]).execute();
      }
      for (const target of add) {
        await tx.insertInto("deliveries").values({
          id: randomUUID(), recordingId, target, kind: "file", payload: null, status: "pending", attempts: 0, lastError: null,
          nextAttemptAt: now, createdAt: now, updatedAt: now, firstAttemptAt: null, redeliverAt: now,
        }).execute();
      }
      const targets = [...new Set([...rows.filter((r) => due.has(r.id)).map((r) => r.target), ...add])];
      await tx.insertInto("events").values(eventRow(recordingId, now, { type: "redeliver_requested", message: `Delivering again by hand: ${targets.join(", ")}`, data: { targets } })).execute();
      return due.size + add.length;
    });
    if (reopened) for (const fn of this.listeners) fn(reopened, "failed");
    return n;
  }

  /** Counts recordings per status. */
  async countByStatus(): Promise<Record<string, number>> {
    const rows = await this.db.selectFrom("recordings").select(["status", sql<number>`count(*)`.as("n")]).groupBy("status").execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  /**
   * Cluster: `worker` takes the recording over — a new lease epoch, which fences off any
   * previous holder. Returns the epoch this worker holds it under.
   * @throws MeetrecError `not_found`.
   */
  async claim(id: string, worker: string): Promise<number> {
    return this.db.transaction().execute(async (tx) => {
      const cur = await this.locked(tx.selectFrom("recordings").select(["epoch"]).where("id", "=", id)).executeTakeFirst();
      if (!cur) throw new MeetrecError("not_found", `No recording ${id}`);
      const epoch = Number(cur.epoch) + 1;
      await tx.updateTable("recordings").set({ worker, epoch }).where("id", "=", id).execute();
      return epoch;
    });
  }

  /** Whether `worker` still holds `id` under `epoch` (false once another worker claimed it). */
  async holds(id: string, worker: string, epoch: number): Promise<boolean> {
    const r = await this.db.selectFrom("recordings").select(["worker", "epoch"]).where("id", "=", id).executeTakeFirst();
    return !!r && r.worker === worker && Number(r.epoch) === epoch;
  }

  /** Gives the recording up (hand-over, end) if `worker` still holds it under `epoch`. */
  async release(id: string, worker: string, epoch: number): Promise<void> {
    await this.db.updateTable("recordings").set({ worker: null }).where("id", "=", id).where("worker", "=", worker).where("epoch", "=", epoch).execute();
  }

  /** The worker holding each live recording (cluster view). */
  async holders(): Promise<{ id: string; worker: string | null; epoch: number }[]> {
    const rows = await this.db.selectFrom("recordings").select(["id", "worker", "epoch"]).where("status", "not in", [...TERMINAL]).execute();
    return rows.map((r) => ({ id: r.id, worker: r.worker, epoch: Number(r.epoch) }));
  }

  /** Records a stop for whichever worker holds `id` (it reads it with {@link stopRequested}). First reason wins. */
  async requestStop(id: string, reason: string): Promise<void> {
    await this.db.updateTable("recordings").set({ stopRequested: reason }).where("id", "=", id).where("stopRequested", "is", null).execute();
  }

  /** The stop asked for `id`, if any. */
  async stopRequested(id: string): Promise<string | null> {
    const r = await this.db.selectFrom("recordings").select("stopRequested").where("id", "=", id).executeTakeFirst();
    return r?.stopRequested ?? null;
  }

  /**
   * Remembers a Nextcloud Talk request's `Talk-Recording-Random` for `backend` if it is new:
   * one atomic insert-if-absent (`ON CONFLICT DO NOTHING` on the (backend, random) key), so of
   * two concurrent requests with the same random — on any API process sharing this store —
   * exactly one gets `true`. Randoms accepted more than `windowMs` (ms) before `now` are purged
   * first (for every backend), so the table holds at most one window of accepted requests and
   * an expired random counts as new again. Call it only after the request's checksum verified.
   * @returns `true` when the random was new (accept the request), `false` when it was already
   * used within the window (a replay).
   */
  async rememberTalkRandom(backend: string, random: string, windowMs: number, now = new Date()): Promise<boolean> {
    const cutoff = new Date(now.getTime() - windowMs).toISOString();
    await this.db.deleteFrom("talkRandoms").where("seenAt", "<=", cutoff).execute();
    const r = await this.db.insertInto("talkRandoms").values({ backend, random, seenAt: now.toISOString() })
      .onConflict((oc) => oc.columns(["backend", "random"]).doNothing()).executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /**
   * Forgets a remembered Talk random, so that Talk's retry of the same request is accepted:
   * for requests meetrec answered with a 5xx (Talk resends those unchanged, same random).
   */
  async forgetTalkRandom(backend: string, random: string): Promise<void> {
    await this.db.deleteFrom("talkRandoms").where("backend", "=", backend).where("random", "=", random).execute();
  }

  /**
   * Adds speaking stretches the meeting page reported for recording `id` (each capture run
   * adds what its page saw; nothing is replaced). Empty `intervals` writes nothing.
   */
  async addSpeakerIntervals(id: string, intervals: readonly SpeakerInterval[]): Promise<void> {
    const rows = intervals.map((i) => ({
      recordingId: id, participantId: i.participantId, participantName: i.participantName, participantUserId: i.participantUserId,
      startMs: Math.round(i.startMs), stopMs: Math.round(i.stopMs), startType: i.startType, stopType: i.stopType,
    }));
    // 500 rows (4000 bound values) per statement: under SQLite's limit on variables.
    await this.db.transaction().execute(async (tx) => {
      for (let at = 0; at < rows.length; at += 500) await tx.insertInto("speakerIntervals").values(rows.slice(at, at + 500)).execute();
    });
  }

  /** The speaking stretches of recording `id`, by start time (then in the order they were added). */
  async speakerIntervals(id: string): Promise<SpeakerInterval[]> {
    const rows = await this.db.selectFrom("speakerIntervals").selectAll().where("recordingId", "=", id).orderBy("startMs").orderBy("id").execute();
    return rows.map((r) => ({
      participantId: r.participantId, participantName: r.participantName, participantUserId: r.participantUserId,
      startMs: Number(r.startMs), stopMs: Number(r.stopMs), startType: r.startType, stopType: r.stopType,
    }));
  }

  /**
   * The container (`mp4`, `mkv`) Talk instance `url` of `backend` last took a recording in, or
   * undefined when none was remembered. Shared by every process on this store, so the leader
   * of a cluster that changes keeps what the last one learnt.
   */
  async talkContainer(backend: string, url: string): Promise<string | undefined> {
    const r = await this.db.selectFrom("talkContainers").select("container").where("backend", "=", backend).where("url", "=", url).executeTakeFirst();
    return r?.container;
  }

  /** Remembers that Talk instance `url` of `backend` took a recording in `container` (at `now`). */
  async rememberTalkContainer(backend: string, url: string, container: string, now = new Date()): Promise<void> {
    await this.db.insertInto("talkContainers").values({ backend, url, container, decidedAt: now.toISOString() })
      .onConflict((oc) => oc.columns(["backend", "url"]).doUpdateSet({ container, decidedAt: now.toISOString() })).execute();
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
