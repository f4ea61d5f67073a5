"""La Suite Meet worker services that record through meetrec.

La Suite Meet (suitenumerique/meet) starts and stops a room's recording through the worker
class named in its setting ``RECORDING_WORKER_CLASSES`` (one per mode). These classes do it
through meetrec's native API (``/v1``) instead of LiveKit Egress; meetrec's own configuration
uploads the file to Meet's bucket under Meet's key and tells Meet with a storage event. See
``docs/integrations/lasuite-meet.md`` in meetrec for both sides' settings.

Meet's contract (shared/protocols/lasuite-meet.md §1, §2; Meet's
``src/backend/core/recording/worker/factories.py`` ``WorkerService``, ``mediator.py``):

- ``__init__(config)``: Meet's ``WorkerServiceConfig``; only ``server_configurations``
  (``LIVEKIT_CONFIGURATION``: ``api_key``, ``api_secret``, ``url``) is used.
- ``start(room_name, recording_id) -> str``: the worker id Meet stores (meetrec's recording id).
- ``stop(worker_id) -> str``: ``"STOPPED"`` (a file follows), ``"ABORTED"`` (none will) or
  ``"FAILED_TO_STOP"``, named as Meet's ``RecordingStatusChoices``.
- Errors: ``WorkerRequestError`` (the request could not be made: settings), ``WorkerConnectionError``
  (meetrec unreachable, or a 5xx), ``WorkerResponseError`` (meetrec refused or answered oddly).
  ``stop`` never raises ``WorkerRequestError``: Meet's mediator does not catch it there.

Settings (Django settings of the same name, else environment variables): ``MEETREC_API_URL``
(meetrec's base URL), ``MEETREC_API_KEY`` (the meetrec backend's ``apiKey``),
``MEETREC_RECORDER_URL`` (the page meetrec opens: a LiveKit Egress template page, which joins
the room from its ``url`` and ``token`` query parameters), optional ``MEETREC_LIVEKIT_URL``
(the LiveKit URL that page connects to; default ``LIVEKIT_CONFIGURATION["url"]``),
``MEETREC_LAYOUT`` (default ``speaker-light``, Meet's egress layout),
``MEETREC_TIMEOUT_SECONDS`` (one request, default 10), ``MEETREC_STOP_WAIT_SECONDS`` (how long
``stop`` waits for meetrec to tell whether a file follows, default 5),
``MEETREC_STARTED_WAIT_SECONDS`` (how long the room's status is watched after a start, default
120; 0 turns the watch off).

Room status shown by Meet's frontend (``useRecordingStatuses.ts``): "started" needs the room
metadata's ``recording_status`` "started" **and** LiveKit's ``room.isRecording``. LiveKit sets
the latter while a participant whose token has the ``recorder`` grant (or kind ``egress``) is
in the room (livekit/livekit ``pkg/rtc/room.go``, ``participant.go`` ``IsRecorder``): the token
minted here has both, like LiveKit Egress's own (livekit/protocol ``egress/token.go``). The
metadata: Meet's mediator writes "starting" right after ``start`` returns and nothing else
writes it without egress webhooks, so a short watch (a daemon thread) writes "started" once
meetrec reports the recording running, and ``stop`` removes the keys as Meet's
``egress_ended`` handler does. What is left is in meetrec's ``docs/integrations/lasuite-meet.md``.

Standard library only (plus Meet itself), so the file can be dropped into Meet's image.
"""

import base64
import hashlib
import hmac
import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings

from core.recording.worker.exceptions import (
    WorkerConnectionError,
    WorkerRequestError,
    WorkerResponseError,
)

logger = logging.getLogger(__name__)

#: Metadata key meetrec's S3 key template reads Meet's recording id from
#: (``delivery.s3.key: recordings/{metadata.meetRecordingId}.{ext}``).
RECORDING_ID_KEY = "meetRecordingId"

#: meetrec statuses after which the recording holds media or has ended (see meetrec's DESIGN).
_FILE_FOLLOWS = ("finalizing", "delivering", "completed")


def _setting(name, default=None):
    """A setting: Django's of that name when set, else the environment variable, else ``default``."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name)
    return default if value is None or value == "" else value


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def recorder_token(api_key, api_secret, room_name, identity, ttl_seconds, now=None):
    """A LiveKit access token (JWT, HS256) for a hidden recorder in ``room_name``.

    Claims as LiveKit Egress mints them (livekit/protocol ``egress/token.go``): identity ``sub``,
    ``kind`` ``egress``, video grant ``roomJoin`` + ``room``, ``canSubscribe``, not
    ``canPublish``/``canPublishData``, ``hidden`` (other participants do not see it) and
    ``recorder`` (LiveKit reports the room as recording while it is there). Valid from ``now``
    (Unix seconds, default the clock) for ``ttl_seconds``.
    """
    issued = int(now if now is not None else time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {
        "iss": api_key,
        "sub": identity,
        "nbf": issued,
        "exp": issued + int(ttl_seconds),
        "name": "meetrec",
        "kind": "egress",
        "video": {
            "room": room_name,
            "roomJoin": True,
            "canSubscribe": True,
            "canPublish": False,
            "canPublishData": False,
            "hidden": True,
            "recorder": True,
        },
    }
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = hmac.new(api_secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64url(signature)


class MeetrecWorkerService:
    """Records a Meet room through meetrec; subclasses name the mode (see the module doc)."""

    hrid = "meetrec"
    #: meetrec's ``mode``: ``video`` or ``audio``.
    meetrec_mode = "video"
    #: Meet's recording mode this class serves (metadata for meetrec's timeline).
    meet_mode = "screen_recording"

    #: Worker ids whose start is being watched in this process, and those of them stopped since
    #: (the watch then writes nothing). Both are emptied as each watch ends.
    _watching = set()
    _stopped = set()
    _lock = threading.Lock()

    def __init__(self, config):
        self._config = config

    # -- meetrec's API --------------------------------------------------------------------

    def _api(self, error):
        """meetrec's base URL and key. @raises ``error`` naming the missing setting."""
        url = _setting("MEETREC_API_URL")
        key = _setting("MEETREC_API_KEY")
        if not url or not key:
            raise error("MEETREC_API_URL and MEETREC_API_KEY must be set to record through meetrec")
        return url.rstrip("/"), key

    def _request(self, method, path, body=None, request_error=WorkerResponseError):
        """One request to meetrec; returns ``(status, parsed JSON body)``.

        @raises WorkerConnectionError when meetrec cannot be reached, times out or answers 5xx;
        WorkerResponseError when it answers 4xx or not JSON; ``request_error`` when the
        settings are missing.
        """
        base, key = self._api(request_error)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(base + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + key)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        timeout = float(_setting("MEETREC_TIMEOUT_SECONDS", 10))
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:  # noqa: S310 (configured URL)
                status, raw = res.status, res.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            raise WorkerConnectionError(f"meetrec at {base} could not be reached: {e}") from e
        try:
            answer = json.loads(raw.decode() or "null")
        except ValueError as e:
            raise WorkerResponseError(f"meetrec answered {status} with a body that is not JSON") from e
        if status >= 500:
            raise WorkerConnectionError(f"meetrec answered {status}: {_detail(answer)}")
        if status >= 400:
            raise WorkerResponseError(f"meetrec answered {status}: {_detail(answer)}")
        if not isinstance(answer, dict):
            raise WorkerResponseError(f"meetrec answered {status} without a recording")
        return status, answer

    # -- Meet's WorkerService -------------------------------------------------------------

    def _page_url(self, room_name, recording_id):
        """The page meetrec opens: the recorder page with ``layout``, ``url`` and ``token`` added."""
        page = _setting("MEETREC_RECORDER_URL")
        livekit = self._config.server_configurations or {}
        ws_url = _setting("MEETREC_LIVEKIT_URL") or livekit.get("url")
        if not page or not ws_url or not livekit.get("api_key") or not livekit.get("api_secret"):
            raise WorkerRequestError(
                "MEETREC_RECORDER_URL and LIVEKIT_CONFIGURATION (api_key, api_secret, url) must be set to record through meetrec"
            )
        max_ms = getattr(settings, "RECORDING_MAX_DURATION", None)
        # A rejoin (browser relaunched) reuses the URL: valid for the whole recording, as Egress's (24 h).
        ttl = math.ceil(int(max_ms) / 1000) + 3600 if max_ms else 24 * 3600
        token = recorder_token(livekit["api_key"], livekit["api_secret"], room_name, f"meetrec-{recording_id}", ttl)
        parts = urllib.parse.urlsplit(page)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        query = [(k, v) for k, v in query if k not in ("layout", "url", "token")]
        query += [("layout", _setting("MEETREC_LAYOUT", "speaker-light")), ("url", ws_url), ("token", token)]
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))

    def start(self, room_name, recording_id):
        """Starts meetrec recording room ``room_name`` for Meet's recording ``recording_id``.

        Returns meetrec's recording id, which Meet stores as the worker id. The request:
        ``mode`` (``audioFormat`` ``opus`` for audio: Meet takes Ogg), the room's page,
        ``maxDurationSeconds`` from ``RECORDING_MAX_DURATION`` (ms) when set, and metadata
        ``meetRecordingId`` (``str(recording_id)``, the S3 key's name), ``meetRoom``, ``meetMode``.
        @raises WorkerRequestError, WorkerConnectionError, WorkerResponseError (module doc).
        """
        body = {
            "url": self._page_url(str(room_name), str(recording_id)),
            "mode": self.meetrec_mode,
            "metadata": {RECORDING_ID_KEY: str(recording_id), "meetRoom": str(room_name), "meetMode": self.meet_mode},
        }
        if self.meetrec_mode == "audio":
            body["audioFormat"] = "opus"
        max_ms = getattr(settings, "RECORDING_MAX_DURATION", None)
        if max_ms:
            body["maxDurationSeconds"] = max(1, math.ceil(int(max_ms) / 1000))
        _, rec = self._request("POST", "/v1/recordings", body, request_error=WorkerRequestError)
        worker_id = rec.get("id")
        if not isinstance(worker_id, str) or not worker_id or len(worker_id) > 255:
            raise WorkerResponseError("meetrec's answer names no recording id")
        logger.info("meetrec recording %s started for room %s", worker_id, room_name)
        self._watch_start(worker_id, str(room_name))
        return worker_id

    def stop(self, worker_id):
        """Stops meetrec's recording ``worker_id``; returns ``STOPPED``, ``ABORTED`` or ``FAILED_TO_STOP``.

        ``STOPPED`` when a file follows (media was captured), ``ABORTED`` when meetrec ended it
        without any, ``FAILED_TO_STOP`` when it failed without a file. While meetrec cannot
        tell yet (still joining), it is asked again for up to ``MEETREC_STOP_WAIT_SECONDS``;
        still undecided, ``STOPPED`` (Meet then keeps the recording savable). The room's
        recording keys are removed afterwards, as Meet does when an egress ends.
        @raises WorkerConnectionError, WorkerResponseError.
        """
        with self._lock:
            if worker_id in self._watching:
                self._stopped.add(worker_id)
        path = "/v1/recordings/" + urllib.parse.quote(str(worker_id), safe="")
        _, rec = self._request("POST", path + "/stop")
        deadline = time.monotonic() + float(_setting("MEETREC_STOP_WAIT_SECONDS", 5))
        outcome = stop_outcome(rec)
        while outcome is None and time.monotonic() < deadline:
            time.sleep(0.5)
            _, rec = self._request("GET", path)
            outcome = stop_outcome(rec)
        room = (rec.get("metadata") or {}).get("meetRoom")
        if room:
            _update_room(room, remove_keys=["recording_mode", "recording_status"])
        logger.info("meetrec recording %s stopped (%s)", worker_id, outcome or "STOPPED")
        return outcome or "STOPPED"

    # -- the room's status ----------------------------------------------------------------

    def _watch_start(self, worker_id, room_name):
        """Writes "started" into the room's metadata once meetrec records (a daemon thread)."""
        wait = float(_setting("MEETREC_STARTED_WAIT_SECONDS", 120))
        if wait <= 0:
            return
        with self._lock:
            self._watching.add(worker_id)
        thread = threading.Thread(
            target=self._watch, args=(worker_id, room_name, wait), name=f"meetrec-start-{worker_id}", daemon=True
        )
        thread.start()

    def _watch(self, worker_id, room_name, wait):
        """Polls meetrec each second until the recording runs (→ "started") or ends, or ``wait`` s pass."""
        try:
            self._watch_until_started(worker_id, room_name, wait)
        finally:
            with self._lock:
                self._watching.discard(worker_id)
                self._stopped.discard(worker_id)

    def _watch_until_started(self, worker_id, room_name, wait):
        deadline = time.monotonic() + wait
        path = "/v1/recordings/" + urllib.parse.quote(worker_id, safe="")
        while time.monotonic() < deadline:
            time.sleep(1)
            if worker_id in self._stopped:
                return
            try:
                _, rec = self._request("GET", path)
            except (WorkerConnectionError, WorkerResponseError) as e:
                logger.warning("meetrec recording %s: status not readable: %s", worker_id, e)
                continue
            status = rec.get("status")
            if status == "recording":
                # Under the lock: a stop marks the id first and clears the keys after, so
                # "started" is either written before that clear or not at all.
                with self._lock:
                    if worker_id not in self._stopped:
                        _update_room(room_name, {"recording_status": "started"})
                return
            if status not in ("queued", "starting"):
                return  # it ended without recording; stop() or the room's end clears the keys
        logger.warning("meetrec recording %s did not start within %s s", worker_id, wait)


def stop_outcome(rec):
    """Meet's status for meetrec's recording ``rec`` after a stop, or None while undecided.

    ``aborted`` → ``ABORTED``; ``failed`` → ``STOPPED`` with a file, else ``FAILED_TO_STOP``;
    finalizing, delivering, completed → ``STOPPED``; recording or stopping with media →
    ``STOPPED``; anything else (queued, starting, nothing captured yet) → None.
    """
    status = rec.get("status")
    has_media = bool(rec.get("file")) or (rec.get("segmentCount") or 0) > 0
    if status == "aborted":
        return "ABORTED"
    if status == "failed":
        return "STOPPED" if rec.get("file") else "FAILED_TO_STOP"
    if status in _FILE_FOLLOWS:
        return "STOPPED"
    if status in ("recording", "stopping") and has_media:
        return "STOPPED"
    return None


def _update_room(room_name, metadata=None, remove_keys=None):
    """Merges into / removes from the LiveKit room's metadata through Meet's ``RoomManagement``; never raises."""
    try:
        from core.services.room_management import RoomManagement  # noqa: PLC0415 (Meet's, loaded late)

        RoomManagement().update_metadata(room_name, metadata, remove_keys=remove_keys)
    except Exception as e:  # noqa: BLE001 (the room may be gone; the recording goes on)
        logger.info("room %s: metadata not updated: %s", room_name, e)


def _detail(answer):
    """A problem+json answer's ``detail`` (or ``title``), for messages."""
    if isinstance(answer, dict):
        return str(answer.get("detail") or answer.get("title") or answer)[:300]
    return str(answer)[:300]


class MeetrecVideoService(MeetrecWorkerService):
    """Meet's ``screen_recording`` mode: H.264 + AAC in MP4 (``recordings/{id}.mp4``)."""

    hrid = "video-recording-meetrec"
    meetrec_mode = "video"
    meet_mode = "screen_recording"


class MeetrecAudioService(MeetrecWorkerService):
    """Meet's ``transcript`` mode: Opus in Ogg (``recordings/{id}.ogg``)."""

    hrid = "audio-recording-meetrec"
    meetrec_mode = "audio"
    meet_mode = "transcript"
