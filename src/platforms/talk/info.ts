/** What a Talk recording remembers of its conversation, and the synthetic backend of `talk.allowAll`. */

/** Backend name used for any Talk instance when `talk.allowAll` is on. */
export const ALLOW_ALL_BACKEND = "talk-any";

/** What a Talk recording remembers about its conversation (stored in `metadata.talk`). */
export interface TalkInfo {
  token: string;
  /** Talk base URL without trailing slash. */
  backendUrl: string;
  owner: string;
  actor: { type: string; id: string };
  /** 1 = video, 2 = audio only. */
  status: 1 | 2;
  /** Actor of the stop request, when Talk sent one. */
  stopActor?: { type: string; id: string } | null;
}
