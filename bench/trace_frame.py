"""Follow one frame from a camera to a stored, audited event, and count the kuzet files and functions on its way.

    python bench/trace_frame.py --data ../shared/data

One consented person is enrolled and approved, then one photo of them goes through a live camera's analysis
session as a frame: `process`, `finish`, `commit`. Every kuzet function entered on the way is recorded (Python's
profiler hook); the script prints how many distinct functions and files that is, the files in the order they are
first entered, and how many times the path comes back into a file it had left (the facade problem: one object
called from everywhere). Works on this tree and on trees from before the service layer (it uses `kuzet.app.Kuzet`,
which both have).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

PASSWORD = "a long enough password"


def _session(svc: Any, actor: Any) -> Any:
    try:
        from kuzet.services.session import AnalysisSession

        return AnalysisSession(svc.services.analysis, actor, camera="gate", source="trace", live=True)
    except ImportError:  # before the service layer
        from kuzet.app import AnalysisSession as OldSession

        return OldSession(svc, actor, camera="gate", source="trace", live=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    import kuzet
    from kuzet.app import Kuzet
    from kuzet.ingest.sources import open_source

    photo = args.data / "faces" / "face_recognition_examples" / "knn_train_biden_biden.jpg"
    root = Path(kuzet.__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        svc = Kuzet(Path(tmp) / "data")
        admin = svc.init_admin("admin", PASSWORD)
        approver = svc.add_user(admin, "approver", PASSWORD, ["approver"])
        enrolled = svc.enroll(admin, "Joe", [photo], consent="trace consent form")
        svc.people_approve(approver, enrolled.identity.person_id, reason="trace run")
        session = _session(svc, admin)
        with open_source(str(photo)) as frames:
            frame = next(iter(frames))
        session.process(frame)  # warm-up: models loaded, caches filled
        session.discard()
        session = _session(svc, admin)

        calls: Counter[tuple[str, str]] = Counter()
        order: list[str] = []
        entries: Counter[str] = Counter()
        last = [""]

        def hook(f: FrameType, event: str, _arg: object) -> None:
            if event != "call":
                return
            path = Path(f.f_code.co_filename)
            if root not in path.parents:
                return
            rel = path.relative_to(root).as_posix()
            calls[(rel, f.f_code.co_qualname)] += 1
            if rel not in order:
                order.append(rel)
            if rel != last[0]:
                entries[rel] += 1
                last[0] = rel

        sys.setprofile(hook)
        try:
            session.process(frame)
            session.finish()
            stored = session.commit()
        finally:
            sys.setprofile(None)
        svc.close()
    figures = {
        "events_stored": len(stored.events),
        "distinct_functions": len(calls),
        "files": len(order),
        "files_in_order": order,
        "re_entries": {f: n - 1 for f, n in entries.most_common() if n > 1},
    }
    print(json.dumps(figures, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
