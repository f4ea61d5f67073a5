"""Stand-in for Meet's ``RoomManagement`` (``src/backend/core/services/room_management.py``): the
LiveKit room's metadata as a dict per room, merged and pruned the way Meet's ``update_metadata``
does; every call is kept in ``CALLS`` for the tests."""

import threading

ROOMS = {}
CALLS = []
_LOCK = threading.Lock()


class RoomManagementException(Exception):
    """A metadata update failed."""


class RoomNotFoundException(RoomManagementException):
    """The room is not (or no longer) in LiveKit."""


class RoomManagement:
    """The rooms' metadata, in memory."""

    def update_metadata(self, room_name, metadata=None, remove_keys=None):
        """Removes ``remove_keys``, then merges ``metadata`` (unknown room: RoomNotFoundException)."""
        with _LOCK:
            CALLS.append((room_name, dict(metadata or {}), list(remove_keys or [])))
            if room_name not in ROOMS:
                raise RoomNotFoundException("Room does not exist")
            existing = ROOMS[room_name]
            for key in remove_keys or []:
                existing.pop(key, None)
            existing.update(metadata or {})
