"""Request bodies of the JSON routes (form routes declare their fields where they are handled)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from kuzet.services.uow import MAX_JUSTIFICATION


class ErrorBody(BaseModel):
    """Every error response: {"error": {"type", "message", "hint"}}."""

    error: dict[str, str]


class LoginBody(BaseModel):
    """Credentials."""

    name: str = Field(..., min_length=1, max_length=64)
    password: str = Field(..., min_length=1, max_length=1024)


class JustificationBody(BaseModel):
    """Why an export is needed (at least 10 characters; recorded in the audit ledger)."""

    justification: str = Field("", max_length=MAX_JUSTIFICATION)


class ReasonBody(BaseModel):
    """A decision's reason."""

    reason: str = Field("", max_length=MAX_JUSTIFICATION)


class ReviewBody(BaseModel):
    """A reviewer's decision."""

    decision: str = Field(..., pattern="^(confirm|reject)$")
    reason: str = Field(..., min_length=1, max_length=2000)
    wrong_match: bool = Field(
        False,
        description="With reject: the alert shows the wrong person; once a second reviewer approves the mark, the same "
        "appearance is not alerted for this entry again while it lasts (each hit so suppressed is ledgered).",
    )


class MarkDecisionBody(BaseModel):
    """A second reviewer's decision on a reviewer's wrong-match mark."""

    decision: str = Field(..., pattern="^(approve|reject)$")
    reason: str = Field(..., min_length=1, max_length=2000)


class NewUserBody(BaseModel):
    """A user to add."""

    name: str = Field(..., min_length=2, max_length=64)
    password: str = Field(..., min_length=1, max_length=1024)
    roles: list[str] = Field(..., min_length=1, max_length=6)
