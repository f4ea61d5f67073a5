"""Meet's ``WorkerServiceConfig`` and ``get_worker_service`` (``src/backend/core/recording/worker/factories.py``),
without Django's settings cache and LiveKit's codec constants: the tests build the config by hand
and load classes by dotted path as Meet's ``import_string`` does."""

import importlib
from dataclasses import dataclass
from typing import Any, Dict, Optional


@dataclass(frozen=True)
class WorkerServiceConfig:
    """What Meet hands every worker service (the same fields, frozen)."""

    output_folder: str
    server_configurations: Dict[str, Any]
    bucket_args: Optional[dict]
    encoding_options: Optional[Dict[str, Any]] = None


def get_worker_service(worker_classes: Dict[str, str], mode: str, config: WorkerServiceConfig):
    """Instantiate a worker service by its mode, as Meet does from RECORDING_WORKER_CLASSES."""
    path = worker_classes[mode]
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)(config=config)
