"""Shared fixtures: the shared data folder, models loaded once, fresh data directories."""

from __future__ import annotations

import gc
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import settings

from kuzet.app import EnrolResult, Kuzet
from kuzet.config.models import DlibResNetConfig
from kuzet.core.errors import AuthError
from kuzet.core.types import User
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.recognize import FaceEmbedder, build_face_embedder
from kuzet.recognize.dlib_resnet import DlibResNetEmbedder
from tests.support.postgres import PostgresServer
from tests.support.rawdb import PG_ADMIN_ENV, new_database
from tests.support.servers import free_port

# Speed is measured by the benchmarks, not by tests: on a busy shared machine one example can outlast Hypothesis's
# 200 ms deadline outside CI (its "ci" profile, loaded when CI is set, already has none). Everything else is kept.
settings.register_profile("kuzet", settings(settings.default, deadline=None))
settings.load_profile("kuzet")


def utc_today() -> date:
    """The service's today: the UTC date (`ServiceContext.now().date()`), not the machine's local one."""
    return datetime.now(UTC).date()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "postgresql"),
        default=os.environ.get("KUZET_TEST_DB", "sqlite"),
        help="the store the tests run on: sqlite (every test) or postgresql (the tests marked `store`, each on a "
        "fresh database of a real PostgreSQL server the run starts)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Converted models go to a cache of the test run's own, not the user's."""
    if "KUZET_CACHE_DIR" not in os.environ:
        import tempfile

        os.environ["KUZET_CACHE_DIR"] = tempfile.mkdtemp(prefix="kuzet-test-cache-")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, run the tests that use the store (and not those that attack SQLite's file itself); on SQLite,
    every test but those about PostgreSQL itself."""
    if config.getoption("--db") != "postgresql":
        keep = [i for i in items if not i.get_closest_marker("postgres_only")]
    else:
        keep = [i for i in items if i.get_closest_marker("store") and not i.get_closest_marker("sqlite_only")]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


@pytest.fixture(scope="session")
def postgres_server(pytestconfig: pytest.Config) -> Iterator[PostgresServer | None]:
    """The PostgreSQL server of a `--db postgresql` run (None on SQLite)."""
    if pytestconfig.getoption("--db") != "postgresql":
        yield None
        return
    server = PostgresServer().start()
    os.environ[PG_ADMIN_ENV] = server.url()
    yield server
    del os.environ[PG_ADMIN_ENV]
    server.close()


@pytest.fixture(autouse=True)
def _store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """On PostgreSQL, every test that uses the store gets a database of its own (KUZET_DATABASE_URL, which kuzet's
    processes started by the test inherit)."""
    postgres = request.config.getoption("--db") == "postgresql" and request.node.get_closest_marker("store")
    if postgres:
        request.getfixturevalue("postgres_server")
        monkeypatch.setenv("KUZET_DATABASE_URL", new_database(Path()))
    yield
    if postgres:
        # A connection a test leaves open is reported against that test, not against whichever runs when the
        # garbage collector happens to find it.
        gc.collect()


def _data_root() -> Path:
    env = os.environ.get("KUZET_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (root / "README.md").is_file():
        raise RuntimeError(f"shared data not found at {root}; set KUZET_DATA to ../shared/data")
    return root


@pytest.fixture(scope="session")
def data_root() -> Path:
    """../shared/data (or $KUZET_DATA)."""
    return _data_root()


@pytest.fixture(scope="session")
def faces_dir(data_root: Path) -> Path:
    return data_root / "faces"


@pytest.fixture(scope="session")
def video_dir(data_root: Path) -> Path:
    return data_root / "video"


@pytest.fixture(scope="session")
def centerface() -> CenterFaceDetector:
    return CenterFaceDetector()


@pytest.fixture(scope="session")
def dlib_embedder() -> DlibResNetEmbedder:
    """dlib's own descriptor (the reference the fast embedders are checked against)."""
    return DlibResNetEmbedder()


@pytest.fixture(scope="session")
def embedder() -> FaceEmbedder:
    """The default embedder (dlib's network converted to onnxruntime on this CPU)."""
    return build_face_embedder(DlibResNetConfig())


PASSWORD = "correct horse battery"


def share_models(svc: Kuzet, detector: CenterFaceDetector, embedder: FaceEmbedder) -> Kuzet:
    """Reuse already loaded models instead of loading them again."""
    svc.face_detector = detector
    svc.face_embedder = embedder
    return svc


@pytest.fixture
def service(tmp_path: Path, centerface: CenterFaceDetector, embedder: FaceEmbedder) -> Iterator[Kuzet]:
    """A Kuzet over a fresh data directory with an administrator, reusing the session's loaded models."""
    svc = share_models(Kuzet(tmp_path / "data"), centerface, embedder)
    svc.init_admin("admin", PASSWORD)
    yield svc
    svc.close()


def admin_of(svc: Kuzet) -> User:
    """The administrator created by the `service` fixture."""
    user, _ = svc.login("admin", PASSWORD)
    return user


def add_user(svc: Kuzet, name: str, *roles: str) -> User:
    """Create a user with `roles` (as the fixture's administrator)."""
    return svc.add_user(admin_of(svc), name, PASSWORD, list(roles))


@pytest.fixture
def operator(service: Kuzet) -> User:
    """A user with the operator role."""
    return add_user(service, "olga", "operator")


ENROLMENT_APPROVER = "enrolment-approver"


def enrol(
    svc: Kuzet,
    actor: User,
    name: str,
    photos: list[Path],
    *,
    consent: str = "signed consent form 17",
    scope: list[str] | None = None,
    expires: date | None = None,
) -> EnrolResult:
    """Enrol a consenting person and have a second user (an approver, created on first use) approve it."""
    result = svc.enroll(actor, name, photos, consent=consent, scope=scope, expires=expires)
    try:
        approver, _ = svc.login(ENROLMENT_APPROVER, PASSWORD)
    except AuthError:
        approver = svc.add_user(admin_of(svc), ENROLMENT_APPROVER, PASSWORD, ["approver"])
    svc.people_approve(approver, result.identity.person_id, reason="consent form checked")
    return result


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll `predicate()` until it is true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


class Broker:
    """A mosquitto broker on loopback that requires a user name and password."""

    def __init__(self, port: int, user: str, password: str, proc: subprocess.Popen[bytes]) -> None:
        self.port, self.user, self.password, self.proc = port, user, password, proc


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """Debian's mosquitto, password-protected, started for the test."""
    port = free_port()
    passwd = tmp_path / "mosquitto.passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "kuzet", "broker-pass-1"], check=True)
    passwd.chmod(0o600)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        # `user`: run as whoever runs the tests (as root, mosquitto would otherwise switch to a user who cannot
        # read the password file)
        f"user {pwd.getpwuid(os.geteuid()).pw_name}\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {passwd}\npersistence false\n",
        encoding="utf-8",
    )
    log = (tmp_path / "mosquitto.log").open("ab")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"  # Debian puts it in sbin, not always on PATH
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, 10, "mosquitto to listen")
    yield Broker(port, "kuzet", "broker-pass-1", proc)
    proc.terminate()
    proc.wait(5)
    log.close()
