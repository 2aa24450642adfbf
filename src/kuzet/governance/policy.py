"""The watchlist policy file: allowed categories with their limits, legal-basis types, extra prohibitions."""

from __future__ import annotations

import hashlib
import importlib.resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from kuzet.config.loading import explain_validation_error
from kuzet.core.errors import ConfigError, InputError
from kuzet.governance.calibration import Calibration, DerivedThreshold, derive_threshold, load_calibration
from kuzet.governance.screening import Screener

Severity = Literal["high", "medium", "low"]
DEFAULT_THRESHOLD = 0.92
"""A face category's cosine threshold when it declares neither `threshold` nor `false_match_rate`."""
SEVERITIES: tuple[Severity, ...] = ("high", "medium", "low")


def checked_severity(text: str) -> Severity:
    """`text` as a severity.

    Raises:
        InputError: It is not one.
    """
    for s in SEVERITIES:
        if text == s:
            return s
    raise InputError(f"unknown severity {text!r}", hint=f"use one of {', '.join(SEVERITIES)}")


class CategoryPolicy(BaseModel):
    """Limits of one allowed watchlist category (its purpose)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    purpose: str = Field(..., min_length=3, description="What entries of this category are for.")
    kind: Literal["face", "plate"] = Field("face", description="What entries hold: a face or a licence plate.")
    max_days: int = Field(..., ge=1, le=3650, description="Longest allowed time from request to expiry, in days.")
    required_reviews: int = Field(
        2, ge=1, le=5, description="Different reviewers who must confirm a hit before it counts as confirmed."
    )
    threshold: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description=f"An explicit operating threshold (cosine) for face hits; without it or `false_match_rate`, "
        f"{DEFAULT_THRESHOLD}. Give one or the other.",
    )
    false_match_rate: float | None = Field(
        None,
        gt=0.0,
        le=0.1,
        description="The declared false-match rate for face hits (e.g. 0.001: one in a thousand comparisons of "
        "different people reaches the threshold); the threshold is derived from measured impostor scores "
        "(`kuzet eval calibrate`). Give this or `threshold`.",
    )
    severity: Severity = Field(
        "high",
        description="How urgent a hit is for the review queue: high (a person at risk or sought), medium (a vehicle), "
        "low. Reviewers filter and sort by it; it never lowers the reviews a hit needs.",
    )

    @model_validator(mode="after")
    def _one_way_to_threshold(self) -> CategoryPolicy:
        if self.threshold is not None and self.false_match_rate is not None:
            raise ValueError(
                "both threshold and false_match_rate are given: choose one (a declared false-match rate, from which "
                "kuzet derives the threshold, or an explicit cosine threshold)"
            )
        if self.kind == "plate" and self.false_match_rate is not None:
            raise ValueError("false_match_rate is for face categories: plates match their text exactly")
        return self


class RetentionPolicy(BaseModel):
    """How long each kind of data is kept; enforced by `kuzet retention run` and on a schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_snapshots_days: int = Field(30, ge=1, le=3650, description="Match events and their snapshots.")
    unconfirmed_alerts_days: int = Field(30, ge=1, le=3650, description="Pending or rejected alerts and their media.")
    confirmed_evidence_days: int = Field(365, ge=1, le=3650, description="Confirmed alerts and their media.")
    recordings_days: int = Field(7, ge=1, le=3650, description="Files under media/recordings.")
    audit_ledger_days: int = Field(
        3650, ge=365, le=36500, description="The audit ledger (never pruned by kuzet before this; see docs)."
    )
    media_cap_mb: int = Field(10240, ge=1, description="Above this, the oldest media is purged first.")
    interval_hours: float = Field(24.0, gt=0, le=720, description="How often the purge runs on its own.")


class EnrolmentPolicy(BaseModel):
    """Limits of enrolments of consenting people."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_days: int = Field(730, ge=1, le=3650, description="Longest allowed time from enrolment to expiry, in days.")
    default_days: int = Field(365, ge=1, le=3650, description="Expiry of an enrolment that names none, in days.")

    @model_validator(mode="after")
    def _default_within_max(self) -> EnrolmentPolicy:
        if self.default_days > self.max_days:
            raise ValueError(
                f"default_days ({self.default_days}) is longer than max_days ({self.max_days}): every enrolment "
                "that names no expiry would be refused; make default_days at most max_days"
            )
        return self


class PolicyModel(BaseModel):
    """The whole policy file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(1, ge=1, le=1, description="Policy format version (this kuzet reads version 1).")
    categories: dict[str, CategoryPolicy] = Field(..., description="Allowed categories by name.")
    legal_basis_types: list[str] = Field(..., min_length=1, description="Accepted kinds of legal basis.")
    languages: list[Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]] = Field(
        default_factory=lambda: ["en", "ru", "kk"],
        description="Languages the policy's own prohibited_labels are written in (ISO 639 codes). The built-in labels "
        "of every language are screened whatever this lists: leaving a language out cannot switch them off.",
    )
    prohibited_categories: list[str] = Field(default_factory=list, description="Added to the built-in list.")
    prohibited_labels: dict[str, list[str]] = Field(
        default_factory=dict, description="Extra prohibited labels by language; added to the built-in lists."
    )
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy, description="Retention per kind of data.")
    enrolment: EnrolmentPolicy = Field(default_factory=EnrolmentPolicy, description="Enrolment of consenting people.")

    @model_validator(mode="after")
    def _labels_in_listed_languages(self) -> PolicyModel:
        stray = sorted(set(self.prohibited_labels) - set(self.languages))
        if stray:
            raise ValueError(
                f"prohibited_labels has labels in {', '.join(stray)}, which languages ({', '.join(self.languages)}) "
                "does not list; add the language to languages, or give the labels under a listed one"
            )
        return self


class Policy:
    """A validated policy with its screener, each face category's threshold and a digest for the ledger.

    Categories that declare a false-match rate get their threshold from `calibration` (required then).

    Raises:
        ConfigError: A prohibited category is allowed, or a declared rate cannot be shown by the calibration.
    """

    def __init__(self, model: PolicyModel, *, source: str, digest: str, calibration: Calibration | None = None) -> None:
        self.model = model
        self.source = source
        self.calibration = calibration
        self.screener = Screener(model.prohibited_labels, model.prohibited_categories)
        for name, cat in model.categories.items():
            refusal = self.screener.screen_category(name) or self.screener.screen("purpose", cat.purpose)
            if refusal is not None:
                raise ConfigError(
                    f"policy {source} allows category {name!r}, which is prohibited: {refusal.reason}",
                    hint="remove the category; the prohibited list always wins",
                )
        self.derived: dict[str, DerivedThreshold] = {}
        for name, cat in model.categories.items():
            if cat.false_match_rate is None:
                continue
            if calibration is None:
                raise ConfigError(
                    f"policy {source}: category {name!r} declares a false-match rate but no calibration is given",
                    hint="measure one with `kuzet eval calibrate`",
                )
            self.derived[name] = derive_threshold(calibration, cat.false_match_rate, category=name)
        # The thresholds follow from the calibration too: a new calibration is a new policy in force.
        if self.derived and calibration is not None:
            digest = hashlib.sha256(f"{digest}:{calibration.digest}".encode()).hexdigest()
        self.digest = digest

    def category(self, name: str) -> CategoryPolicy | None:
        """The allowed category of that name, if any."""
        return self.model.categories.get(name)

    def threshold(self, category: str) -> float:
        """A category's operating threshold (cosine): derived from its declared rate, explicit, or the default.

        Raises:
            KeyError: The policy has no such category.
        """
        derived = self.derived.get(category)
        if derived is not None:
            return derived.threshold
        own = self.model.categories[category].threshold
        return DEFAULT_THRESHOLD if own is None else own

    def false_match_rate(self, category: str) -> float | None:
        """A category's declared false-match rate (None for an explicit threshold or a category no longer listed)."""
        cat = self.model.categories.get(category)
        return None if cat is None else cat.false_match_rate

    def check_embedder(self, embedder: str) -> None:
        """Refuse thresholds that would not mean what they say with the configured matcher `embedder`.

        Derived thresholds must come from a calibration of the same embedder (or fusion); with a fusion, whose
        scores are not cosines, every face category must declare a false-match rate instead of a raw threshold.

        Raises:
            ConfigError: The calibration measured something else, or a fusion meets a raw threshold.
        """
        if embedder.startswith("fusion("):
            raw = [n for n, c in self.model.categories.items() if c.kind == "face" and c.false_match_rate is None]
            if raw:
                raise ConfigError(
                    f"policy {self.source}: face categories {', '.join(sorted(raw))} give a cosine threshold, but "
                    f"face scores are fused ({embedder}) and not cosines",
                    hint="declare false_match_rate for every face category (docs/governance.md)",
                )
        if self.derived and self.calibration is not None and self.calibration.embedder != embedder:
            raise ConfigError(
                f"the calibration ({self.calibration.source}) was measured with the {self.calibration.embedder} "
                f"embedder, but the configured one is {embedder}: its thresholds would not mean the declared "
                f"false-match rates",
                hint="measure this embedder with `kuzet eval calibrate -o DATA_DIR/calibration.json`",
            )

    def severity(self, category: str) -> Severity:
        """A category's severity; `high` for one the policy no longer lists (its hits are not played down)."""
        cat = self.model.categories.get(category)
        return cat.severity if cat is not None else "high"

    def severity_filter(self, severity: Severity) -> tuple[list[str] | None, list[str]]:
        """The categories whose hits have `severity`, as (only these, or None for any; never these).

        `high` is every category except those listed lower, so a category the policy no longer lists stays high.
        """
        mine = [n for n, c in self.model.categories.items() if c.severity == severity]
        others = [n for n in self.model.categories if n not in mine]
        return (None, others) if severity == "high" else (mine, [])

    def summary(self) -> dict[str, str | int | float | bool | None]:
        """What the ledger records about this policy (its digest and each category's settings)."""
        out: dict[str, str | int | float | bool | None] = {"digest": self.digest, "source": self.source}
        for name, c in sorted(self.model.categories.items()):
            out[f"{name}.max_days"] = c.max_days
            out[f"{name}.required_reviews"] = c.required_reviews
            out[f"{name}.threshold"] = self.threshold(name)
            out[f"{name}.false_match_rate"] = c.false_match_rate
        if self.derived and self.calibration is not None:
            out["calibration"] = self.calibration.source
            out["calibration.digest"] = self.calibration.digest
            out["calibration.impostor_pairs"] = self.calibration.impostor_pairs
        for key, value in self.model.retention.model_dump().items():
            out[f"retention.{key}"] = value
        for key, value in self.model.enrolment.model_dump().items():
            out[f"enrolment.{key}"] = value
        return out


def load_policy(path: Path | None, *, calibration: Path | None = None, matcher: str = "dlib-resnet") -> Policy:
    """Load a policy file, or the default policy shipped with kuzet when `path` is None.

    Declared false-match rates are turned into thresholds with the calibration file `calibration`, or the one
    shipped with kuzet for the face matcher `matcher` (an embedder or a fusion) when it is None.
    """
    if path is None:
        text = importlib.resources.files("kuzet.governance").joinpath("default_policy.yaml").read_text("utf-8")
        source = "built-in default"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read policy file {path}: {exc.strerror}", hint="check the path") from None
        source = str(path)
    try:
        data = yaml.safe_load(text)
        model = PolicyModel.model_validate(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"policy file {source} is not valid YAML: {exc}", hint="fix the syntax") from None
    except ValidationError as exc:
        problems = "\n  ".join(explain_validation_error(exc))
        raise ConfigError(f"policy file {source} has problems:\n  {problems}", hint="see docs/governance.md") from None
    digest = hashlib.sha256(model.model_dump_json().encode()).hexdigest()
    declares = any(c.false_match_rate is not None for c in model.categories.values())
    measured = load_calibration(calibration, matcher=matcher) if declares else None
    return Policy(model, source=source, digest=digest, calibration=measured)
