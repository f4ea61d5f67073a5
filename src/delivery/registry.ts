/**
 * Delivery targets as a registry: each target (one file: `targets/*.ts`, a platform's
 * `targets.ts`) says which deliveries a recording calls for, what it needs from the
 * recording's metadata, and how one attempt is made. The hosts install every target in one
 * {@link DeliveryTargets}, which the planner, the sender and the recording use cases consult;
 * the retry, ordering and give-up rules stay with the sender (`service.ts`).
 */
import type { BackendConfig, Config } from "../config/index.js";
import type { EgressPolicy } from "../egress/index.js";
import type { Delivery, DeliveryKind, Recording, RecordingOptions, RecordingStatus, RecordingStore } from "../store/index.js";
import { MeetrecError } from "../util/errors.js";
import type { Logger } from "../util/log.js";

/**
 * Thrown by a target's `deliver` when the receiver refused the delivery for good — sending the
 * same thing again cannot succeed (La Suite Meet's 403 "cannot be saved"): the sender gives the
 * delivery up at once (`failed`, `delivery_given_up`) instead of retrying. A `redeliver` still
 * tries it again, after a fix.
 */
export class DeliveryRefused extends Error {
  override readonly name = "DeliveryRefused";
}

/** What a recording is asked for, before it exists (a `POST`) or after a `PATCH` of its metadata. */
export type RequestedRecording = Pick<Recording, "backend" | "options" | "metadata">;

/** One value a recording's delivery targets need and cannot use. */
export interface DeliveryInputProblem {
  /** The request field: `metadata.{key}`. */
  field: string;
  message: string;
}

/** A status change as notify targets see it; the recording handed with it is as it is after the change. */
export interface StatusChange {
  /** The status before. */
  from: RecordingStatus;
  /** The recording after the change as the API shows it, links relative (the sender's `withBase` makes them absolute). */
  view: unknown;
}

/** A delivery a notify target asks for: its full target name (`webhook:crm`) and what to send (stored as JSON). */
export interface PlannedDelivery {
  target: string;
  payload?: unknown;
}

/** What one attempt may use from the process around it. */
export interface DeliveryContext {
  config: Config;
  store: RecordingStore;
  log: Logger;
  /** The recording's backend as configured now (the sender fails the attempt when it is gone). */
  backend: BackendConfig;
  /** The egress policy outgoing connections are held to (`egress.allow`). */
  egress: EgressPolicy;
  /** The recording as the API shows it, links absolute (spool sidecars, e-mail). */
  describe(rec: Recording): unknown;
  /** A view queued without a base (webhook payloads, {@link StatusChange.view}), its links made absolute. */
  withBase(view: unknown): unknown;
  /** Absolute local path of a recording's finished file (downloaded first when it is kept in a bucket). */
  filePath(rec: Recording): Promise<string>;
  /** Public download URL of the file (presigned bucket URL), when there is one. */
  fileUrl?(rec: Recording): Promise<string | undefined>;
  /**
   * Local paths of the file's per-participant tracks (`file.tracks`, in order; downloaded first
   * when they are kept in a bucket). Absent or empty: none to deliver.
   */
  trackPaths?(rec: Recording): Promise<{ name: string; path: string }[]>;
}

interface TargetBase {
  /**
   * The target's name as deliveries carry it (`spool`), or, ending in `:`, the prefix of a
   * family of targets (`webhook:` for `webhook:{name}`). Its part before the first `:` is the
   * `kind` label of the delivery metrics.
   */
  readonly name: string;
  /**
   * What the target needs from values the platform supplies and cannot use, checked at `POST`
   * and metadata `PATCH` with the rules its deliveries use (empty, or absent: all is well).
   */
  inputProblems?(rec: RequestedRecording, backend: BackendConfig): DeliveryInputProblem[];
  /**
   * One attempt of `delivery` (a delivery of this target) for `rec` as it is now (metadata
   * changed since it was queued counts). Resolves with the attempt's message, which API
   * clients see (no local paths, no secrets).
   * @throws Error to have the attempt retried with backoff (its message is stored; its `cause`
   * only logged), until the delivery is given up; {@link DeliveryRefused} to give it up now.
   */
  deliver(delivery: Delivery, rec: Recording, ctx: DeliveryContext): Promise<string>;
}

/**
 * A target the recording's file goes to (upload, bucket, spool). Its deliveries are queued,
 * without payload, when the file is ready (`delivering`, or `failed` with a file); a
 * `delivering` recording becomes `completed` once all of them have succeeded.
 */
export interface FileTarget extends TargetBase {
  readonly kind: "file";
  /** The target names (its `name`, or names of its family) the file of `rec` must reach; `[]`: none. */
  plan(rec: RequestedRecording, backend: BackendConfig): string[];
}

/** A target told about status changes (webhooks, platform callbacks, the owner's mail). */
export interface NotifyTarget extends TargetBase {
  readonly kind: "notify";
  /** The deliveries to this target that the change of `rec` (as it is after it) calls for; `[]`: none. */
  plan(rec: Recording, backend: BackendConfig, change: StatusChange): PlannedDelivery[];
}

/** See {@link FileTarget}, {@link NotifyTarget}. */
export type DeliveryTarget = FileTarget | NotifyTarget;

/** Whether a recording uses one of its backend's optional targets (per-recording `delivery.targets`, default all). */
export function wants(rec: Pick<Recording, "options">, target: NonNullable<NonNullable<RecordingOptions["delivery"]>["targets"]>[number]): boolean {
  return rec.options.delivery?.targets?.includes(target) ?? true;
}

/**
 * Every delivery target of the installation, by name. Targets are consulted in the order they
 * were installed: on a status change the notify targets' deliveries are queued in that order,
 * then the file targets' (see {@link DeliveryTargets.planChange}); file targets and input
 * problems are listed in that order too. A recording of a backend that is not configured (any
 * more) calls for nothing and has no problems.
 */
export class DeliveryTargets {
  private readonly targets: readonly DeliveryTarget[];

  /** @throws Error when two targets have the same name (a wiring mistake). */
  constructor(private readonly config: Config, targets: readonly DeliveryTarget[]) {
    const names = targets.map((t) => t.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new Error(`delivery target ${twice} is installed twice`);
    this.targets = [...targets];
  }

  /** The target a delivery of `target` (`spool`, `webhook:crm`) goes through: the one of that name, else the family it starts with. */
  get(target: string): DeliveryTarget | undefined {
    return this.targets.find((t) => t.name === target) ?? this.targets.find((t) => t.name.endsWith(":") && target.startsWith(t.name));
  }

  /** Names of the file targets a recording must reach before it is `completed` ({@link FileTarget.plan}). */
  fileTargets(rec: RequestedRecording): string[] {
    const backend = this.config.backends[rec.backend];
    if (!backend) return [];
    return this.targets.flatMap((t) => (t.kind === "file" ? t.plan(rec, backend) : []));
  }

  /**
   * The deliveries a status change of `rec` (as it is after it) queues: the notify targets'
   * ({@link NotifyTarget.plan}), then, when the change makes the file ready, one per file
   * target. The file is ready when the recording reaches `delivering` or ends `failed` with a
   * file — not again when a `delivering` recording gave up (`failed`) or is delivered again by
   * hand (`failed → delivering` re-uses its deliveries).
   */
  planChange(rec: Recording, change: StatusChange): (PlannedDelivery & { kind: DeliveryKind })[] {
    const backend = this.config.backends[rec.backend];
    if (!backend) return [];
    const planned: (PlannedDelivery & { kind: DeliveryKind })[] = [];
    for (const t of this.targets) {
      if (t.kind === "notify") planned.push(...t.plan(rec, backend, change).map((p) => ({ ...p, kind: t.kind })));
    }
    const { from } = change;
    if (rec.file && ((rec.status === "delivering" && from !== "failed") || (rec.status === "failed" && from !== "delivering"))) {
      planned.push(...this.fileTargets(rec).map((target) => ({ target, kind: "file" as const })));
    }
    return planned;
  }

  /**
   * What the recording's delivery targets (its backend's, narrowed by `delivery.targets`) need
   * from values the platform supplies and cannot use (each target's `inputProblems`). Empty
   * when all is well.
   */
  inputProblems(rec: RequestedRecording): DeliveryInputProblem[] {
    const backend = this.config.backends[rec.backend];
    if (!backend) return [];
    return this.targets.flatMap((t) => t.inputProblems?.(rec, backend) ?? []);
  }

  /**
   * {@link DeliveryTargets.inputProblems}, as an error.
   * @throws MeetrecError `validation_failed` naming the first bad field (`details.field`; the
   * message lists all of them, `details.errors` holds them).
   */
  checkInputs(rec: RequestedRecording): void {
    const problems = this.inputProblems(rec);
    if (problems.length === 0) return;
    throw new MeetrecError("validation_failed", problems.map((p) => p.message).join("; "), { details: { field: problems[0].field, errors: problems } });
  }
}
