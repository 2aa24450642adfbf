"""Score fusion of face embedders: each model's cosine normalised with constants fitted on data, then weighted.

Each model keeps its own descriptor space; a pair (or a query and a template) is scored by each model with that
model's descriptors, and the scores are combined as `sum_k weight_k * (score_k - centre_k) / scale_k`. The shipped
constants (`kuzet/governance/fusion.json`) were fitted on every visible labelled set pooled (never on one set) by
`bench/compare_face_models.py`; see docs/accuracy.md for the rule and why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kuzet.core.errors import ConfigError

FUSION_FILE = "fusion.json"
"""The shipped fusion constants, beside the calibration in `kuzet.governance`."""


@dataclass(frozen=True, slots=True)
class ScoreStats:
    """Genuine (same person) and impostor (different people) cosine statistics of one model on some pairs."""

    genuine_mean: float
    genuine_std: float
    impostor_mean: float
    impostor_std: float
    genuine_pairs: int
    impostor_pairs: int

    @classmethod
    def of(cls, scores: NDArray[np.float64], same: NDArray[np.bool_]) -> ScoreStats:
        """Statistics of finite pair scores (N,) with their labels (N,)."""
        ok = np.isfinite(scores)
        g, i = scores[ok & same], scores[ok & ~same]
        if len(g) < 2 or len(i) < 2:
            raise ValueError("fitting needs at least two genuine and two impostor pairs")
        return cls(float(g.mean()), float(g.std()), float(i.mean()), float(i.std()), len(g), len(i))

    @property
    def d_prime(self) -> float:
        """Separation of the two distributions in pooled standard deviations."""
        return (self.genuine_mean - self.impostor_mean) / float(
            np.sqrt((self.genuine_std**2 + self.impostor_std**2) / 2)
        )


@dataclass(frozen=True, slots=True)
class ModelNormalisation:
    """How one model's cosine enters the fusion: `weight * (score - centre) / scale`."""

    model: str
    centre: float
    scale: float
    weight: float


RULES = ("anchored-mean", "z-mean")
"""Fusion rules `fit_fusion` knows; each averages the models' normalised scores with equal weights.

- `anchored-mean` (shipped): each score mapped so that the model's impostor mean is 0 and its genuine mean is 1,
  `(score - impostor_mean) / (genuine_mean - impostor_mean)`: both models then speak the same units (a typical
  different pair scores 0, a typical same pair 1), whatever their cosine ranges.
- `z-mean`: each score as a z-score against the model's impostor scores, `(score - impostor_mean) / impostor_std`.
  This gives the model whose impostor scores are tightest relative to its genuine ones (SFace here) most of the
  say; on the visible sets it was worse than `anchored-mean` (docs/accuracy.md).
"""


@dataclass(frozen=True, slots=True)
class ScoreFusion:
    """Fused pair scores of several models (higher = more alike), in the units of the normalised scores."""

    rule: str
    models: tuple[ModelNormalisation, ...]

    @property
    def model_names(self) -> tuple[str, ...]:
        """The fused models, in order."""
        return tuple(m.model for m in self.models)

    @property
    def label(self) -> str:
        """A name for reports, e.g. `fusion(dlib-resnet+sface)`."""
        return f"fusion({'+'.join(self.model_names)})"

    def fuse(self, scores: Mapping[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        """Fused scores (N,) float64 from each model's cosine scores (N,), keyed by model name.

        A score of -inf or +inf (a missing face counted as an error) stays infinite in the fusion.

        Raises:
            KeyError: A fused model's scores are missing.
        """
        out: NDArray[np.float64] | None = None
        for m in self.models:
            term = m.weight * (np.asarray(scores[m.model], np.float64) - m.centre) / m.scale
            out = term if out is None else out + term
        assert out is not None
        return out

    def to_json(self) -> dict[str, object]:
        """The rule and constants as a JSON-ready mapping."""
        return {
            "rule": self.rule,
            "models": [
                {"model": m.model, "centre": m.centre, "scale": m.scale, "weight": m.weight} for m in self.models
            ],
        }


def fit_fusion(stats: Mapping[str, ScoreStats], *, rule: str = "anchored-mean") -> ScoreFusion:
    """Fusion constants from each model's score statistics on the fitting data (pooled over sets).

    Raises:
        ValueError: An unknown rule, fewer than two models, or a model whose genuine mean is not above its
            impostor mean.
    """
    if rule not in RULES:
        raise ValueError(f"unknown fusion rule {rule!r}; known: {', '.join(RULES)}")
    if len(stats) < 2:
        raise ValueError("fusion needs at least two models")
    models = []
    for name, s in stats.items():
        if s.genuine_mean <= s.impostor_mean:
            raise ValueError(f"{name}: genuine scores are not above impostor scores; nothing to fuse")
        scale = s.genuine_mean - s.impostor_mean if rule == "anchored-mean" else s.impostor_std
        models.append(ModelNormalisation(model=name, centre=s.impostor_mean, scale=scale, weight=1.0 / len(stats)))
    return ScoreFusion(rule=rule, models=tuple(models))


def load_fusion(path: Path | None = None) -> ScoreFusion:
    """The fusion constants of a file (default: the shipped `kuzet/governance/fusion.json`).

    Raises:
        ConfigError: The file is missing or malformed.
    """
    try:
        if path is None:
            text = resources.files("kuzet.governance").joinpath(FUSION_FILE).read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        data = json.loads(text)
        models = tuple(
            ModelNormalisation(
                model=str(m["model"]), centre=float(m["centre"]), scale=float(m["scale"]), weight=float(m["weight"])
            )
            for m in data["models"]
        )
        rule = str(data["rule"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"cannot read the fusion constants {path or FUSION_FILE}: {exc}",
            hint="refit them with python bench/compare_face_models.py",
        ) from None
    if len(models) < 2 or any(m.scale <= 0 or m.weight <= 0 for m in models):
        raise ConfigError(
            f"the fusion constants {path or FUSION_FILE} need two or more models with positive scales and weights",
            hint="refit them with python bench/compare_face_models.py",
        )
    return ScoreFusion(rule=rule, models=models)
