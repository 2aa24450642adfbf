"""What every configuration section shares: strict, frozen models; a backend chosen by `type`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


def default_type(default: str) -> BeforeValidator:
    """A backend section without `type` means the default backend (so `face_detector: {min_face: 40}` works)."""

    def fill(value: Any) -> Any:
        if isinstance(value, dict) and "type" not in value:
            return {"type": default, **value}
        return value

    return BeforeValidator(fill)


class Strict(BaseModel):
    """A configuration section: unknown keys are an error (a typo is never ignored), and values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)
