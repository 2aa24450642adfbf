"""Where models run: onnxruntime execution providers for a `device` setting."""

from __future__ import annotations

from kuzet.core.errors import ModelError


def ort_providers(device: str) -> list[str]:
    """Onnxruntime execution providers for a `device` setting: CUDA first where asked for and present."""
    import onnxruntime as ort

    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not cuda:
        raise ModelError("device: cuda was asked for but onnxruntime has no CUDA provider", hint="use device: auto")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda and device != "cpu" else ["CPUExecutionProvider"]
