"""Private Redis and Postgres servers that a test may kill, restart and throw away.

The shared servers (`tests/fixtures_storage.py`) must never be stopped; fault tests (a Redis restart under a
vote, Postgres crashing mid-transaction) start their own here, each on a free port with its data in a
temporary directory. `kill()` is SIGKILL to the server's whole process group (the postmaster and its backends
together, as a container kill does), so `restart()` exercises real crash recovery (Redis replays its AOF,
Postgres its WAL).

Both classes are context managers that always stop the server and remove its data, and there are
function-scoped fixtures `private_redis` and `private_postgres` (registered in tests/conftest.py) that skip
when the server binaries are not installed.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
INITDB_OPTIONS = ["-E", "UTF8", "--no-locale", "--no-sync"]
PG_STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until(ready: Any, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {READY_TIMEOUT_S}s:\n{_tail(log)}")
        time.sleep(0.05)


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _PrivateServer:
    """Start/kill/stop bookkeeping shared by the two servers."""

    name = "server"

    def __init__(self) -> None:
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _popen_kwargs(self) -> dict[str, Any]:
        return {}

    def _is_ready(self) -> bool:
        raise NotImplementedError

    @property
    def _log(self) -> Path:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start (or start again, same port and data) and wait until the server answers."""
        if self.running:
            return self
        with open(self._log, "ab") as log:
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() takes the children too
                **self._popen_kwargs(),
            )
        _wait_until(self._is_ready, self._process, self._log, f"{self.name} on port {self.port}")
        return self

    def restart(self) -> Self:
        """Start again after `kill()` or `stop()`, on the same port with the same data."""
        return self.start()

    def kill(self) -> None:
        """SIGKILL the server and every process it started: no shutdown, no final fsync."""
        if self._process is None:
            return
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._process.wait()
        self._process = None

    def _stop(self, sig: signal.Signals) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(sig)
            try:
                self._process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()  # it would not stop
        self._process = None

    def _remove_data(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop the server (killing it if it will not stop) and remove its data."""
        try:
            self._stop(signal.SIGTERM)
        finally:
            self._remove_data()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class PrivateRedis(_PrivateServer):
    """A redis-server of our own. `durable` runs it as shipped (AOF, fsync on every write), else with no
    persistence at all."""

    name = "redis-server"

    def __init__(self, tmp_dir: Path, *, durable: bool = True, extra_args: Sequence[str] = ()) -> None:
        super().__init__()
        self.durable = durable
        self.extra_args = list(extra_args)  # e.g. ["--rename-command", "CONFIG", ""]; later arguments win
        self.dir = Path(tempfile.mkdtemp(prefix="redis-", dir=tmp_dir))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def _log(self) -> Path:
        return self.dir / "redis.log"

    def _command(self) -> list[str]:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"] if self.durable else ["--appendonly", "no", "--save", ""]
        )
        address = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        return ["redis-server", *address, *persistence, *self.extra_args]

    def _is_ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")  # "-LOADING" while it replays the AOF
        except OSError:
            return False

    def stop(self) -> None:
        """SHUTDOWN by SIGTERM: a clean stop (the AOF is flushed)."""
        self._stop(signal.SIGTERM)

    def _remove_data(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name}: no PostgreSQL server binaries found")
    return path


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = []
    for stat_file in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat_file).read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat_file.split("/")[2]))
    return found


def _traversable_by_all(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


class PrivatePostgres(_PrivateServer):
    """A PostgreSQL server of our own (trust auth, 127.0.0.1 only, unix socket in its own directory).

    Postgres refuses to run as root, so under root it runs as the `postgres` user; its data then lives in a
    directory that user can reach (pytest's tmp_path under /tmp/pytest-of-root is private to root).
    """

    name = "postgres"

    def __init__(self, tmp_dir: Path) -> None:
        super().__init__()
        self._as_root = os.geteuid() == 0
        parent = tmp_dir if _traversable_by_all(tmp_dir) or not self._as_root else None
        self.base = Path(tempfile.mkdtemp(prefix="artmatch-pg-", dir=parent))
        self.base.chmod(0o755)
        self.data = self.base / "data"
        self.sockets = self.base / "sockets"
        if self._as_root:
            shutil.chown(self.base, "postgres", "postgres")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def _log(self) -> Path:
        return self.base / "postgres.log"

    def _popen_kwargs(self) -> dict[str, Any]:
        return {"user": "postgres", "group": "postgres", "extra_groups": []} if self._as_root else {}

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "fsync": "off",  # only the process dies in these tests, never the machine: the page cache survives
        }
        options = [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
        where = ["-D", str(self.data), "-p", str(self.port), "-k", str(self.sockets)]
        return [_postgres_bin("postgres"), *where, *options]

    def _initdb(self) -> None:
        self.sockets.mkdir(exist_ok=True)
        if self._as_root:
            shutil.chown(self.sockets, "postgres", "postgres")
        subprocess.run(
            [_postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", *INITDB_OPTIONS],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            **self._popen_kwargs(),
        )

    def _is_ready(self) -> bool:
        result = subprocess.run(
            [_postgres_bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
            check=False,
        )
        return result.returncode == 0

    def start(self) -> Self:
        """Start (running initdb the first time) and wait until it accepts connections."""
        if not (self.data / "PG_VERSION").is_file():
            self._initdb()
        return super().start()

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends (each backend is in a session of its own, so the process
        group alone would leave them running, holding the shared memory that a restart needs)."""
        children = _children(self._process.pid) if self._process is not None else []
        super().kill()
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self, mode: str = "fast") -> None:
        """Shut down: "smart" waits for clients, "fast" disconnects them, "immediate" skips the checkpoint."""
        self._stop(PG_STOP_SIGNALS[mode])

    def close(self) -> None:
        try:
            self._stop(signal.SIGINT)
        finally:
            self._remove_data()

    def _remove_data(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A durable redis-server of this test's own, started; stopped and removed afterwards."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    with PrivateRedis(tmp_path) as server:
        yield server


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this test's own, started; stopped and removed afterwards."""
    try:
        _postgres_bin("postgres")
    except FileNotFoundError:
        pytest.skip("PostgreSQL server binaries not installed")
    with PrivatePostgres(tmp_path) as server:
        yield server
