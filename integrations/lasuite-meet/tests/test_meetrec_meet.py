"""Tests of the La Suite Meet worker class (``meetrec_meet.py``) under Debian's python3, stdlib only.

Meet itself is not installed: ``tests/stubs`` stands in for what the class imports from it
(``django.conf.settings``, ``core.recording.worker.exceptions``, ``core.services.room_management``)
and for how Meet loads and builds it (``core.recording.worker.factories``).

Two groups:
- ``Offline``: the LiveKit token, the stop mapping, the errors without a server (always run).
- ``AgainstMeetrec``: start and stop real recordings on a running ``meetrec serve``; run when
  ``MEETREC_API_URL`` is set (meetrec's test ``test/e2e/lasuite-meet.test.ts`` starts the server,
  a page to record, s3rver and a Meet stand-in, runs this file, then checks the delivered
  files). Its settings: ``MEETREC_API_URL``, ``MEETREC_API_KEY``, ``MEETREC_RECORDER_URL``,
  ``MEET_RECORDING_IDS`` (JSON: Meet's recording ids per case, seeded in the stand-in),
  ``MEETREC_RECORD_SECONDS`` (media per recording), ``MEETREC_TEST_OUT`` (where the worker ids
  are written for the TypeScript side).

Run: ``python3 -m unittest discover -s integrations/lasuite-meet/tests -v``.
"""

import base64
import hashlib
import hmac
import json
import os
import socket
import sys
import time
import unittest
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "stubs"), os.path.dirname(HERE)]

from django.conf import settings  # noqa: E402  (the stub)

from core.recording.worker import factories  # noqa: E402
from core.recording.worker.exceptions import (  # noqa: E402
    WorkerConnectionError,
    WorkerRequestError,
    WorkerResponseError,
)
from core.services import room_management  # noqa: E402

import meetrec_meet  # noqa: E402

API_KEY = "lk-api-key"
API_SECRET = "lk-api-secret-0123456789abcdef0123456789"
LIVEKIT_URL = "wss://livekit.example.test"
#: Meet's RECORDING_WORKER_CLASSES with these classes, as an operator sets it (a DictValue).
WORKER_CLASSES = {
    "screen_recording": "meetrec_meet.MeetrecVideoService",
    "transcript": "meetrec_meet.MeetrecAudioService",
}


def meet_config():
    """Meet's ``WorkerServiceConfig.from_settings()`` for a default installation."""
    return factories.WorkerServiceConfig(
        output_folder="recordings",
        server_configurations={"api_key": API_KEY, "api_secret": API_SECRET, "url": LIVEKIT_URL},
        bucket_args={"endpoint": "http://minio:9000", "access_key": "meet", "secret": "password", "region": "",
                     "bucket": "meet-media-storage", "force_path_style": True},
    )


def service(mode):
    """The worker service Meet would build for ``mode`` (``get_worker_service``)."""
    return factories.get_worker_service(WORKER_CLASSES, mode, meet_config())


def _unb64(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_livekit_token(token, api_key, api_secret, now=None):
    """Checks a token as LiveKit's server does (HS256 signed with the key's secret, ``iss`` the
    key, ``nbf``/``exp`` around now) and returns its claims. Raises AssertionError otherwise."""
    header_b64, claims_b64, sig_b64 = token.split(".")
    header = json.loads(_unb64(header_b64))
    assert header == {"alg": "HS256", "typ": "JWT"}, header
    expected = hmac.new(api_secret.encode(), f"{header_b64}.{claims_b64}".encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(expected, _unb64(sig_b64)), "bad signature"
    claims = json.loads(_unb64(claims_b64))
    assert claims["iss"] == api_key
    t = now if now is not None else time.time()
    assert claims["nbf"] <= t + 1 < claims["exp"], claims
    return claims


def closed_port():
    """A TCP port on 127.0.0.1 nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Env:
    """Sets environment variables for a block and restores them."""

    def __init__(self, **values):
        self.values = values
        self.saved = {}

    def __enter__(self):
        for k, v in self.values.items():
            self.saved[k] = os.environ.get(k)
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        return self

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Offline(unittest.TestCase):
    """What needs no server."""

    def test_token_is_a_hidden_recorder_in_the_room(self):
        token = meetrec_meet.recorder_token(API_KEY, API_SECRET, "room-1", "meetrec-x", 3600, now=1_800_000_000)
        claims = verify_livekit_token(token, API_KEY, API_SECRET, now=1_800_000_000)
        self.assertEqual(claims["sub"], "meetrec-x")
        self.assertEqual(claims["kind"], "egress")
        self.assertEqual(claims["exp"] - claims["nbf"], 3600)
        self.assertEqual(claims["video"], {"room": "room-1", "roomJoin": True, "canSubscribe": True, "canPublish": False,
                                           "canPublishData": False, "hidden": True, "recorder": True})
        with self.assertRaises(AssertionError):
            verify_livekit_token(token, API_KEY, "another-secret", now=1_800_000_000)

    def test_page_url_carries_layout_livekit_url_and_token(self):
        with Env(MEETREC_RECORDER_URL="https://egress.example.test/template/?layout=grid&x=1", MEETREC_LAYOUT=None, MEETREC_LIVEKIT_URL=None):
            settings.RECORDING_MAX_DURATION = 7_200_000
            try:
                url = service("screen_recording")._page_url("room-2", str(uuid.uuid4()))
            finally:
                settings.RECORDING_MAX_DURATION = None
        parts = urllib.parse.urlsplit(url)
        self.assertEqual(f"{parts.scheme}://{parts.netloc}{parts.path}", "https://egress.example.test/template/")
        q = dict(urllib.parse.parse_qsl(parts.query))
        self.assertEqual(q["x"], "1")
        self.assertEqual(q["layout"], "speaker-light")
        self.assertEqual(q["url"], LIVEKIT_URL)
        claims = verify_livekit_token(q["token"], API_KEY, API_SECRET)
        self.assertEqual(claims["exp"] - claims["nbf"], 7200 + 3600)  # the longest recording, and an hour
        self.assertEqual(claims["video"]["room"], "room-2")

    def test_stop_outcome(self):
        cases = [
            ({"status": "aborted"}, "ABORTED"),
            ({"status": "failed", "file": None}, "FAILED_TO_STOP"),
            ({"status": "failed", "file": {"name": "recording.ogg"}}, "STOPPED"),
            ({"status": "completed", "file": {"name": "recording.mp4"}}, "STOPPED"),
            ({"status": "delivering"}, "STOPPED"),
            ({"status": "finalizing"}, "STOPPED"),
            ({"status": "stopping", "segmentCount": 3}, "STOPPED"),
            ({"status": "recording", "segmentCount": 1}, "STOPPED"),
            ({"status": "stopping", "segmentCount": 0}, None),
            ({"status": "starting", "segmentCount": 0}, None),
            ({"status": "queued"}, None),
        ]
        for rec, want in cases:
            self.assertEqual(meetrec_meet.stop_outcome(rec), want, rec)

    def test_missing_settings_fail_the_start_as_a_request_error(self):
        with Env(MEETREC_API_URL=None, MEETREC_API_KEY=None, MEETREC_RECORDER_URL="https://egress.example.test/"):
            with self.assertRaises(WorkerRequestError):
                service("transcript").start("room", uuid.uuid4())
        with Env(MEETREC_API_URL="http://127.0.0.1:9", MEETREC_API_KEY="k" * 20, MEETREC_RECORDER_URL=None):
            with self.assertRaises(WorkerRequestError):
                service("transcript").start("room", uuid.uuid4())

    def test_unreachable_meetrec_is_a_connection_error(self):
        with Env(MEETREC_API_URL=f"http://127.0.0.1:{closed_port()}", MEETREC_API_KEY="k" * 20,
                 MEETREC_RECORDER_URL="https://egress.example.test/", MEETREC_TIMEOUT_SECONDS="2"):
            with self.assertRaises(WorkerConnectionError):
                service("screen_recording").start("room", uuid.uuid4())
            with self.assertRaises(WorkerConnectionError):
                service("screen_recording").stop(str(uuid.uuid4()))

    def test_missing_settings_never_raise_request_error_from_stop(self):
        # Meet's mediator catches only WorkerConnectionError and WorkerResponseError around stop().
        with Env(MEETREC_API_URL=None, MEETREC_API_KEY=None):
            with self.assertRaises(WorkerResponseError):
                service("screen_recording").stop("x")


@unittest.skipUnless(os.environ.get("MEETREC_API_URL"), "needs a running meetrec serve (MEETREC_API_URL); see the module doc")
class AgainstMeetrec(unittest.TestCase):
    """Real recordings on the meetrec server the TypeScript test started."""

    out = {}

    @classmethod
    def setUpClass(cls):
        cls.ids = json.loads(os.environ["MEET_RECORDING_IDS"])
        cls.seconds = float(os.environ.get("MEETREC_RECORD_SECONDS", "5"))
        os.environ.setdefault("MEETREC_STOP_WAIT_SECONDS", "20")

    @classmethod
    def tearDownClass(cls):
        path = os.environ.get("MEETREC_TEST_OUT")
        if path:
            with open(path, "w", encoding="utf-8") as f:
                json.dump(cls.out, f)

    def get(self, worker_id):
        req = urllib.request.Request(f"{os.environ['MEETREC_API_URL']}/v1/recordings/{worker_id}",
                                     headers={"Authorization": "Bearer " + os.environ["MEETREC_API_KEY"]})
        with urllib.request.urlopen(req, timeout=10) as res:
            return json.loads(res.read())

    def wait_for(self, what, until, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = until()
            if value:
                return value
            time.sleep(0.2)
        self.fail(f"timed out waiting for {what}")

    def record(self, mode):
        """Meet's start, then (as Meet's mediator) "starting" in the room; media; Meet's stop."""
        meet_id = uuid.UUID(self.ids[mode])  # Meet passes its recording id as a UUID object
        room = f"room-{mode}"
        room_management.ROOMS[room] = {}
        worker_id = service(mode).start(room, meet_id)
        room_management.ROOMS[room].update({"recording_mode": mode, "recording_status": "starting"})

        rec = self.get(worker_id)
        self.assertEqual(rec["metadata"], {"meetRecordingId": str(meet_id), "meetRoom": room, "meetMode": mode})
        self.assertEqual(rec["mode"], "audio" if mode == "transcript" else "video")
        self.assertEqual(rec["audioFormat"], "opus" if mode == "transcript" else None)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(rec["url"]).query))
        self.assertEqual(q["url"], LIVEKIT_URL)
        self.assertTrue(verify_livekit_token(q["token"], API_KEY, API_SECRET)["video"]["recorder"])

        # The start watch writes "started" once meetrec records (what LiveKit's egress webhook would).
        self.wait_for("started in the room", lambda: room_management.ROOMS[room].get("recording_status") == "started")
        self.assertEqual(self.get(worker_id)["status"], "recording")
        started_at = time.time()
        time.sleep(self.seconds)
        self.assertEqual(service(mode).stop(worker_id), "STOPPED")
        self.assertEqual(room_management.ROOMS[room], {}, "stop removes the room's recording keys")
        # A second stop (Meet retrying after a lost answer) gives the same answer.
        self.assertEqual(service(mode).stop(worker_id), "STOPPED")
        self.out[mode] = {"meetId": str(meet_id), "workerId": worker_id, "startedAt": started_at}

    def test_1_transcript(self):
        self.record("transcript")

    def test_2_screen_recording(self):
        self.record("screen_recording")

    def test_3_stopped_before_anything_was_captured_is_aborted(self):
        meet_id = uuid.UUID(self.ids["aborted"])
        worker_id = service("screen_recording").start("room-aborted", meet_id)
        self.assertEqual(service("screen_recording").stop(worker_id), "ABORTED")
        self.out["aborted"] = {"meetId": str(meet_id), "workerId": worker_id}

    def test_4_meetrec_refusals_are_response_errors(self):
        with Env(MEETREC_API_KEY="wrong-key-0123456789abcdef"):
            with self.assertRaises(WorkerResponseError):
                service("transcript").start("room", uuid.uuid4())
        with self.assertRaises(WorkerResponseError):
            service("transcript").stop(str(uuid.uuid4()))  # meetrec knows no such recording: 404


if __name__ == "__main__":
    unittest.main(verbosity=2)
