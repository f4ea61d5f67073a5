"""Stand-in for Django in the tests: only ``django.conf.settings`` is used by the worker class."""
