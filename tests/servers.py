"""Real servers for the scale tests and benchmarks: a Milvus standalone server (PyPI ``milvus``, the server
binary in a wheel) and a Ray head (``ray start --head --block``). Each runs as a separate process in its own
session, on free loopback ports, in its own folder; readiness is awaited with a deadline, and ``stop()``
signals the process group whose id is the server's process id, never a process found by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

MILVUS_READY_S = 180.0  # a cold start on two busy cores takes 3 to 15 s; the first one also unpacks 250 MB
RAY_READY_S = 120.0
SESSION_TTL_S = 10  # Milvus's default is 30 s: a restart after a kill would wait that long to reload


def free_port() -> int:
    """A TCP port that nothing listens on at 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


@dataclass
class ServerProcess:
    """A server started in its own session: its process id is also the id of its process group."""

    process: subprocess.Popen
    folder: Path
    log: Path
    started_s: float = 0.0  # from launch until ready
    stop_grace_s: float = 10.0

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def kill(self) -> None:
        """Stop at once, as a crash or a power cut would (SIGKILL to the server's process group)."""
        self._signal_group(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after the grace period; children included."""
        if self.running:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(self.stop_grace_s)
        self._signal_group(signal.SIGKILL)  # whatever of the group is left: workers, helpers
        self.process.wait()


def _launch(command: list[str], folder: Path, env: dict[str, str], log_name: str) -> tuple[subprocess.Popen, Path]:
    log = folder / log_name
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, log


def _wait(server: ServerProcess, ready, timeout: float, what: str) -> ServerProcess:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not server.running:
            raise RuntimeError(f"{what} exited with code {server.process.returncode}:\n{server.log_tail()}")
        if ready():
            server.started_s = time.monotonic() - started
            return server
        time.sleep(0.25)
    server.stop()
    raise TimeoutError(f"{what} was not ready within {timeout:.0f} s:\n{server.log_tail()}")


# ---------------------------------------------------------------------------------------------
# Milvus standalone
# ---------------------------------------------------------------------------------------------


@dataclass
class MilvusServer(ServerProcess):
    port: int = 0
    metrics_port: int = 0
    binaries: Path = Path()
    stop_grace_s: float = 3.0  # Milvus 2.3.5 does not finish a graceful stop; its data survive a kill

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restart(self) -> None:
        """Start again on the same folder and port (after ``kill`` or ``stop``): the same server, data kept."""
        self.stop()
        again = start_milvus(self.folder, self.binaries, port=self.port)
        self.process, self.metrics_port, self.started_s = again.process, again.metrics_port, again.started_s


def unpack_milvus(binaries: Path) -> Path:
    """Unpack the server binary and its libraries from the ``milvus`` wheel into ``binaries/bin`` (once)."""
    import milvus

    milvus._initialize_data_files(str(binaries))  # skips files whose checksum is already there
    return binaries / "bin" / "milvus"


def start_milvus(folder: Path, binaries: Path, port: int | None = None, timeout: float = MILVUS_READY_S) -> MilvusServer:
    """A Milvus standalone server with its data, logs and config in ``folder``, on ``port`` (default: a free one).

    Starting again on the same folder and port is a restart: the collections are still there.
    """
    import milvus

    class LoopbackConfig(milvus.MilvusServerConfig):
        """Components advertise 127.0.0.1 to each other (Milvus 2.3 still listens on every interface)."""

        def resolve(self) -> None:
            for component in ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode"):
                self.set(f"{component}.ip", "127.0.0.1")
            # A killed server's etcd sessions must expire before a restarted one reloads its collections.
            self.set("common.session.ttl", SESSION_TTL_S)
            super().resolve()

        def try_bind_port(self, port: int):  # as the package does, but a port in TIME_WAIT counts as free
            probe = socket.socket()
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
                probe.listen()
                return probe
            except OSError:
                probe.close()
                return None

    executable = unpack_milvus(binaries)
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    metrics_port = free_port()
    config = LoopbackConfig(data_dir=str(folder), proxy_port=port)
    config.resolve()  # writes folder/configs/milvus.yaml, with every internal port free
    env = {
        **os.environ, "DEPLOY_MODE": "STANDALONE", "METRICS_PORT": str(metrics_port),
        "MILVUS_RUN_DIR": str(folder / "run"),
        "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [str(executable.parent), os.environ.get("LD_LIBRARY_PATH")])),
    }
    process, log = _launch([str(executable), "run", "standalone"], folder, env, "server.log")
    server = MilvusServer(process=process, folder=folder, log=log, port=port, metrics_port=metrics_port,
                          binaries=binaries)

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=2) as answer:
                return b"OK" in answer.read()
        except OSError:
            return False

    return _wait(server, healthy, timeout, f"Milvus on port {port}")


# ---------------------------------------------------------------------------------------------
# Ray head
# ---------------------------------------------------------------------------------------------


@dataclass
class RayHead(ServerProcess):
    port: int = 0  # GCS
    client_port: int = 0  # Ray Client (ray://)
    token: str = ""
    env: dict[str, str] = field(default_factory=dict)  # what a driver on this machine needs besides the token

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def client_address(self) -> str:
        return f"ray://127.0.0.1:{self.client_port}"


# Ray rewrites 127.0.0.1 into the machine's interface address unless told that this is a one-machine cluster;
# with it, every Ray process listens on 127.0.0.1 only.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def start_ray_head(
    folder: Path, token: str = "", num_cpus: int = 2, object_store_mb: int = 256, timeout: float = RAY_READY_S
) -> RayHead:
    """``ray start --head --block`` on free loopback ports with ``folder`` as Ray's temp dir.

    With ``token``, the head requires token authentication (``RAY_AUTH_MODE=token``); without it,
    authentication is off explicitly, so that a token file in ``~/.ray`` changes nothing. Ray's socket
    paths must stay under ~100 characters: keep ``folder`` short (e.g. under /tmp).
    """
    folder.mkdir(parents=True, exist_ok=True)
    port, client_port = free_port(), free_port()
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token} if token else {"RAY_AUTH_MODE": "disabled"}
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update({**LOOPBACK_ENV, **auth, "RAY_USAGE_STATS_ENABLED": "0"})
    ray = str(Path(sys.executable).with_name("ray"))
    command = [
        ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
        f"--ray-client-server-port={client_port}", "--include-dashboard=false", f"--num-cpus={num_cpus}",
        f"--object-store-memory={object_store_mb * 1024 * 1024}", f"--temp-dir={folder}", "--disable-usage-stats",
    ]
    process, log = _launch(command, folder, env, "head.log")
    head = RayHead(process=process, folder=folder, log=log, port=port, client_port=client_port, token=token,
                   env=dict(LOOPBACK_ENV))

    def ready() -> bool:
        return "Ray runtime started" in log.read_text(errors="replace") and listening(client_port)

    return _wait(head, ready, timeout, f"the Ray head on port {port}")
