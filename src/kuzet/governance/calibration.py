"""Face-match thresholds from a declared false-match rate, derived from measured impostor scores.

A calibration is what `kuzet eval calibrate` writes: the cosine similarities of different-person pairs
(impostors) and of same-person pairs (genuine), measured with one face embedder on named data sets. A policy
category that declares `false_match_rate` gets the lowest threshold at which the measured data shows, with 95%
confidence, that an impostor pair reaches the threshold no more often than that rate (a one-sided Clopper-Pearson
bound). A rate the data cannot show even with no impostor above the threshold is refused: it needs about
3 / rate impostor pairs.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import math
from dataclasses import dataclass
from pathlib import Path

from kuzet.core.errors import ConfigError

CONFIDENCE = 0.95
"""How sure the measured data must make us that the true false-match rate is at most the declared one."""
SCORE_DECIMALS = 6
"""Scores are stored rounded to this many decimals; derived thresholds lie one step above a stored score."""
FORMAT = 1
CALIBRATION_FILE = "calibration.json"
"""A data directory's own calibration (else the one shipped with kuzet)."""
FUSED_RANGE = 100.0
"""Fused scores (`anchored-mean` of cosines) lie well within [-100, 100] (about -3 to 2 on real pairs)."""
SHIPPED = {"dlib-resnet": CALIBRATION_FILE, "fusion(dlib-resnet+sface)": "calibration_fusion.json"}
"""The calibrations shipped with kuzet, by what they measured (an embedder or a fusion), all on the visible sets."""


@dataclass(frozen=True, slots=True)
class CalibrationSet:
    """One data set a calibration measured.

    Attributes:
        name: The set as given (its folder name).
        labels: The labels or pairs file it was read from (name only) and its SHA-256.
        images: Images read; `no_face` of them gave no face (their pairs are left out).
        impostor_pairs: Different-person pairs scored; `genuine_pairs` same-person ones.
    """

    name: str
    labels: str
    sha256: str
    images: int
    no_face: int
    impostor_pairs: int
    genuine_pairs: int


@dataclass(frozen=True, slots=True)
class Calibration:
    """Measured impostor and genuine scores of one face embedder (cosine, descending)."""

    embedder: str
    detector: str
    sets: tuple[CalibrationSet, ...]
    impostor_scores: tuple[float, ...]
    genuine_scores: tuple[float, ...]
    source: str = ""
    digest: str = ""

    @property
    def impostor_pairs(self) -> int:
        """How many impostor pairs were measured."""
        return len(self.impostor_scores)

    def data(self) -> str:
        """The data sets measured, as people read them (e.g. `lfw_original_10id (100 images)`)."""
        return ", ".join(f"{s.name} ({s.images} images)" for s in self.sets) or "none"

    def to_json(self) -> dict[str, object]:
        """The calibration file's content."""
        return {
            "format": FORMAT,
            "embedder": self.embedder,
            "detector": self.detector,
            "confidence": CONFIDENCE,
            "impostor_pairs": self.impostor_pairs,
            "genuine_pairs": len(self.genuine_scores),
            "sets": [
                {
                    "name": s.name,
                    "labels": s.labels,
                    "sha256": s.sha256,
                    "images": s.images,
                    "no_face": s.no_face,
                    "impostor_pairs": s.impostor_pairs,
                    "genuine_pairs": s.genuine_pairs,
                }
                for s in self.sets
            ],
            "impostor_scores": [round(s, SCORE_DECIMALS) for s in self.impostor_scores],
            "genuine_scores": [round(s, SCORE_DECIMALS) for s in self.genuine_scores],
        }

    def to_text(self) -> str:
        """The calibration file as written: indented, each list of scores on one line."""
        data = self.to_json()
        meta = json.dumps({k: v for k, v in data.items() if not k.endswith("_scores")}, indent=2)
        scores = [f'  "{k}": {json.dumps(v)}' for k, v in data.items() if k.endswith("_scores")]
        return ",\n".join([meta.removesuffix("\n}"), *scores]) + "\n}\n"


def make_calibration(
    *, embedder: str, detector: str, sets: list[CalibrationSet], impostor: list[float], genuine: list[float]
) -> Calibration:
    """A calibration from measured scores (any order; stored rounded, descending)."""
    return Calibration(
        embedder=embedder,
        detector=detector,
        sets=tuple(sets),
        impostor_scores=tuple(sorted((round(s, SCORE_DECIMALS) for s in impostor), reverse=True)),
        genuine_scores=tuple(sorted((round(s, SCORE_DECIMALS) for s in genuine), reverse=True)),
    )


def needed_pairs(rate: float, confidence: float = CONFIDENCE) -> int:
    """Fewest impostor pairs that can show a false-match rate of at most `rate` (none of them above threshold).

    With n pairs and none above, the one-sided upper bound is 1 - (1 - confidence)^(1/n): about 3 / rate at 95%.
    """
    return math.ceil(math.log(1.0 - confidence) / math.log1p(-rate))


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (n in the thousands, k small)."""
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k + 1):
        log_term = math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        total += math.exp(log_term)
    return min(total, 1.0)


def allowed_exceedances(n: int, rate: float, confidence: float = CONFIDENCE) -> int | None:
    """Most impostor pairs of `n` that may reach the threshold while the bound stays at `rate` (None: none may).

    k exceedances are allowed when the one-sided Clopper-Pearson upper bound of k / n at `confidence` is at most
    `rate`, i.e. when P(X <= k) <= 1 - confidence for X ~ Binomial(n, rate).
    """
    if n <= 0 or _binomial_cdf(0, n, rate) > 1.0 - confidence:
        return None
    k = 0
    while k + 1 < n and _binomial_cdf(k + 1, n, rate) <= 1.0 - confidence:
        k += 1
    return k


@dataclass(frozen=True, slots=True)
class DerivedThreshold:
    """A threshold derived from a declared rate, with what the measured data shows there."""

    rate: float
    threshold: float
    impostor_pairs: int
    impostors_at_or_above: int
    genuine_accepted: float | None
    """Share of the measured same-person pairs at or above the threshold (None when there were none)."""


def score_range(embedder: str) -> tuple[float, float]:
    """The range of a matcher's scores: [-1, 1] for a cosine, `FUSED_RANGE` for a fusion.

    Fused scores (`fusion(...)`: 0 is a typical different pair, 1 a typical same pair) may pass 1.
    """
    return (-FUSED_RANGE, FUSED_RANGE) if embedder.startswith("fusion(") else (-1.0, 1.0)


def derive_threshold(calibration: Calibration, rate: float, *, category: str = "") -> DerivedThreshold:
    """The lowest score (cosine or fused) at which the measured impostor scores show a false-match rate <= `rate`.

    Raises:
        ConfigError: The calibration has too few impostor pairs to show `rate` (naming how many it would need).
    """
    n = calibration.impostor_pairs
    k = allowed_exceedances(n, rate)
    if k is None:
        who = f"category {category!r} declares" if category else "a declared"
        raise ConfigError(
            f"{who} false-match rate {rate:g}, but the calibration ({calibration.source or 'given'}) holds only "
            f"{n} impostor pairs: showing {rate:g} at {CONFIDENCE:.0%} confidence needs at least "
            f"{needed_pairs(rate)}",
            hint="declare a larger rate, or measure more impostor pairs with `kuzet eval calibrate` "
            f"and put the file in the data directory as {CALIBRATION_FILE}",
        )
    scores = calibration.impostor_scores
    # One rounding step above the (k+1)-th highest impostor: at most k impostors reach it, whatever the rounding hid.
    step = 10.0**-SCORE_DECIMALS
    low, high = score_range(calibration.embedder)
    threshold = round(scores[k] + step, SCORE_DECIMALS) if k < n else low
    threshold = min(threshold, high)
    above = sum(1 for s in scores if s >= threshold)
    genuine = calibration.genuine_scores
    accepted = sum(1 for s in genuine if s >= threshold) / len(genuine) if genuine else None
    return DerivedThreshold(
        rate=rate, threshold=threshold, impostor_pairs=n, impostors_at_or_above=above, genuine_accepted=accepted
    )


def _set(d: object, source: str) -> CalibrationSet:
    if not isinstance(d, dict):
        raise ConfigError(f"calibration {source}: each of `sets` must be an object", hint="rewrite it")
    try:
        return CalibrationSet(
            name=str(d["name"]),
            labels=str(d["labels"]),
            sha256=str(d["sha256"]),
            images=int(d["images"]),
            no_face=int(d["no_face"]),
            impostor_pairs=int(d["impostor_pairs"]),
            genuine_pairs=int(d["genuine_pairs"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"calibration {source}: a set lacks {exc}", hint="write it with `kuzet eval calibrate`"
        ) from None


def parse_calibration(text: str, *, source: str) -> Calibration:
    """A calibration file's content.

    Raises:
        ConfigError: It is not a calibration written by `kuzet eval calibrate`.
    """
    hint = "write it with `kuzet eval calibrate`"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"calibration {source} is not valid JSON: {exc}", hint=hint) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"calibration {source} is not a format-{FORMAT} calibration", hint=hint)
    try:
        impostor = [float(s) for s in data["impostor_scores"]]
        genuine = [float(s) for s in data.get("genuine_scores", [])]
        sets = [_set(s, source) for s in data["sets"]]
        embedder, detector = str(data["embedder"]), str(data.get("detector", ""))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"calibration {source} lacks or garbles {exc}", hint=hint) from None
    low, high = score_range(embedder)
    if any(not low <= s <= high for s in impostor + genuine):
        raise ConfigError(f"calibration {source} holds scores outside [{low:g}, {high:g}]", hint=hint)
    made = make_calibration(embedder=embedder, detector=detector, sets=sets, impostor=impostor, genuine=genuine)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Calibration(
        embedder=made.embedder,
        detector=made.detector,
        sets=made.sets,
        impostor_scores=made.impostor_scores,
        genuine_scores=made.genuine_scores,
        source=source,
        digest=digest,
    )


def load_calibration(path: Path | None, *, matcher: str = "dlib-resnet") -> Calibration:
    """A calibration file, or the one shipped with kuzet for `matcher` (measured on the visible data sets).

    Without a shipped calibration of `matcher`, the dlib-resnet one is returned: `Policy.check_embedder` then
    refuses its derived thresholds, saying how to measure the configured matcher.
    """
    if path is None:
        name = SHIPPED.get(matcher, CALIBRATION_FILE)
        text = importlib.resources.files("kuzet.governance").joinpath(name).read_text("utf-8")
        return parse_calibration(text, source="built-in")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read calibration {path}: {exc.strerror}", hint="check the path") from None
    return parse_calibration(text, source=str(path))
