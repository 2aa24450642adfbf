"""Where models run: onnxruntime execution providers for a `device` setting, and CPU threads per process."""

from __future__ import annotations

import os
from typing import Any

from kuzet.core.errors import ModelError

_sharing = 1
"""How many processes share this machine's cores (set once per `kuzet run` worker process; 1 otherwise)."""
_spin = True
"""Whether onnxruntime's idle threads spin (fastest for one process alone; waste when cameras share cores)."""


def share_cores(processes: int) -> None:
    """Declare this process one of `processes` analysing live cameras at once.

    Thread defaults then divide the cores, and onnxruntime's threads sleep instead of spinning while they wait
    (spinning workers steal each other's cores).
    """
    global _sharing, _spin
    _sharing = max(1, processes)
    _spin = False


def cpu_threads(configured: int) -> int:
    """Threads for a model: the configured number, else this process's share of the cores (at least 1)."""
    return configured or max(1, (os.cpu_count() or 1) // _sharing)


def ort_options(threads: int) -> Any:
    """Onnxruntime session options: quiet, fully optimised, `cpu_threads(threads)` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = cpu_threads(threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not _spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def ort_providers(device: str) -> list[str]:
    """Onnxruntime execution providers for a `device` setting: CUDA first where asked for and present."""
    import onnxruntime as ort

    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not cuda:
        raise ModelError("device: cuda was asked for but onnxruntime has no CUDA provider", hint="use device: auto")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda and device != "cpu" else ["CPUExecutionProvider"]
