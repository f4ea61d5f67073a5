"""Stand-in for ``django.conf``: ``settings`` is a plain namespace the tests set attributes on.

Meet's settings the worker class reads: ``RECORDING_MAX_DURATION`` (ms or None), and the
``MEETREC_*`` settings (else their environment variables).
"""
import types

settings = types.SimpleNamespace(RECORDING_MAX_DURATION=None)
