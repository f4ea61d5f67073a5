"""The exception types of Meet's ``core/recording/worker/exceptions.py`` (names as in tag v1.27.0),
which the worker class raises and Meet's mediator catches."""


class WorkerRequestError(Exception):
    """The request to the worker could not be made."""


class WorkerConnectionError(Exception):
    """The worker could not be reached."""


class WorkerResponseError(Exception):
    """The worker answered something unexpected."""
