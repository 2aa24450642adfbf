"""constraints.txt pins every dependency pyproject.toml declares, at a version its specifier allows."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def pins() -> dict[str, Version]:
    out: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        assert version and re.fullmatch(r"[A-Za-z0-9._-]+", name), f"not a name==version pin: {line!r}"
        out[canonicalize_name(name)] = Version(version)
    return out


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return [Requirement(line) for line in lines]


def test_every_declared_dependency_is_pinned_within_its_specifier() -> None:
    pinned = pins()
    for req in declared():
        name = canonicalize_name(req.name)
        if name == "kuzet":
            continue  # an extra naming another extra of kuzet itself
        assert name in pinned, f"{req.name} is in pyproject.toml but not in constraints.txt: run `make lock`"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pinned[name]}, outside pyproject.toml's {req}: run `make lock`"
        )


def test_a_pin_outside_the_specifier_is_caught() -> None:
    """The check above can fail: OpenCV 5.1 against the declared 5.0 range is refused."""
    req = next(r for r in declared() if canonicalize_name(r.name) == "opencv-python")
    assert not req.specifier.contains(Version("5.1.0.80"))
    assert req.specifier.contains(pins()["opencv-python"])
