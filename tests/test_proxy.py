"""The compose load balancer (`deploy/nginx/artmatch.conf`) run by a real nginx against stand-in replicas: requests
spread over every address the DNS gives for `inference`, a replica that answers 503 hands the request to another,
a replica added to the DNS answer gets traffic without a reload, and Telegram's POSTs reach a bot replica with
their secret header. Docker's DNS is stood in by a tiny resolver on loopback.

Skips without an nginx binary (`nginx` on PATH, or ARTMATCH_NGINX; Debian's `nginx` package has one)."""

from __future__ import annotations

import collections
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.private_services import free_port

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "deploy" / "nginx" / "artmatch.conf"
NGINX = os.environ.get("ARTMATCH_NGINX") or shutil.which("nginx") or ""
pytestmark = pytest.mark.skipif(not NGINX, reason="no nginx binary (set ARTMATCH_NGINX or install Debian's nginx)")


class Resolver:
    """Answers A queries from a mapping name -> addresses that the test may change; NXDOMAIN otherwise."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                query, client = self.socket.recvfrom(512)
            except TimeoutError:
                continue
            self.socket.sendto(self._answer(query), client)

    def _answer(self, query: bytes) -> bytes:
        labels, offset = [], 12
        while query[offset]:
            labels.append(query[offset + 1 : offset + 1 + query[offset]].decode())
            offset += 1 + query[offset]
        question = query[12 : offset + 5]
        qtype = struct.unpack("!H", query[offset + 1 : offset + 3])[0]
        addresses = self.answers.get(".".join(labels), []) if qtype == 1 else []
        rcode = 0 if ".".join(labels) in self.answers else 3
        header = query[:2] + struct.pack("!HHHHH", 0x8180 | rcode, 1, len(addresses), 0, 0)
        records = b"".join(
            struct.pack("!HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(address) for address in addresses
        )
        return header + question + records

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.socket.close()


@dataclass
class Replica:
    """A stand-in replica on its own loopback address: counts requests, answers its name, or 503 when `full`."""

    address: str
    port: int
    full: bool = False
    seen: collections.Counter[str] = field(default_factory=collections.Counter)
    headers: list[dict[str, str]] = field(default_factory=list)

    def start(self) -> None:
        replica = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                replica.seen[self.command] += 1
                replica.headers.append(dict(self.headers))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body = (503, b"queue full") if replica.full else (200, replica.address.encode())
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((self.address, self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Proxy:
    inference: str
    webhook: str
    resolver: Resolver
    replicas: dict[str, Replica]


def adapted_config(dns_port: int, inference_port: int, webhook_port: int, replica_port: int) -> str:
    """The shipped file with only its addresses moved onto loopback (each must be found exactly once)."""
    text = CONFIG.read_text()
    for old, new in {
        "resolver 127.0.0.11 valid=10s": f"resolver 127.0.0.1:{dns_port} valid=1s",  # 1 s: the scale-up test waits it
        "listen 8000;": f"listen 127.0.0.1:{inference_port};",
        "listen 8080;": f"listen 127.0.0.1:{webhook_port};",
        "http://inference:8000;": f"http://inference:{replica_port};",
        "http://bot:8080;": f"http://bot:{replica_port};",
    }.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else "nginx exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nginx did not listen on {port}")


def main_config(tmp: Path, servers: str) -> Path:
    (tmp / "artmatch.conf").write_text(servers)
    temp = " ".join(f"{kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = tmp / "nginx.conf"
    main.write_text(
        f"pid {tmp / 'nginx.pid'};\nerror_log {tmp / 'error.log'};\nevents {{}}\n"
        f"http {{ access_log off; {temp} include {tmp / 'artmatch.conf'}; }}\n"
    )
    return main


def test_the_shipped_configuration_is_valid(tmp_path: Path) -> None:
    main = main_config(tmp_path, CONFIG.read_text())
    result = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")],
                            capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxy]:
    replica_port = free_port()
    replicas = {a: Replica(a, replica_port) for a in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")}
    for replica in replicas.values():
        replica.start()
    resolver = Resolver({"inference": ["127.0.0.2", "127.0.0.3"], "bot": ["127.0.0.5"]})
    inference_port, webhook_port = free_port(), free_port()
    main = main_config(tmp_path, adapted_config(resolver.port, inference_port, webhook_port, replica_port))
    command = [NGINX, "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log"), "-g", "daemon off;"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    try:
        wait_for_port(inference_port, process)
        yield Proxy(f"http://127.0.0.1:{inference_port}", f"http://127.0.0.1:{webhook_port}", resolver, replicas)
    finally:
        process.terminate()
        process.wait(timeout=20)
        resolver.close()
        for replica in replicas.values():
            replica.stop()


def test_requests_spread_over_every_replica_the_dns_names(proxy: Proxy) -> None:
    with httpx.Client(base_url=proxy.inference, timeout=10) as client:
        answers = collections.Counter(client.get("/healthz").text for _ in range(20))
    # nginx's resolver starts each lookup at a random address of the answer, as Docker's DNS shuffles it too
    assert set(answers) == {"127.0.0.2", "127.0.0.3"}


def test_a_full_replica_hands_the_request_to_another(proxy: Proxy) -> None:
    proxy.replicas["127.0.0.2"].full = True
    with httpx.Client(base_url=proxy.inference, timeout=10) as client:
        answers = [client.post("/v1/look", content=b"photo" * 1000) for _ in range(20)]
    assert [(a.status_code, a.text) for a in answers] == [(200, "127.0.0.3")] * 20
    assert proxy.replicas["127.0.0.2"].seen["POST"] > 0  # it was asked, and refused


def test_a_replica_added_to_the_dns_gets_traffic_without_a_reload(proxy: Proxy) -> None:
    with httpx.Client(base_url=proxy.inference, timeout=10) as client:
        client.get("/healthz")
        proxy.resolver.answers["inference"] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]  # `--scale inference=3`
        time.sleep(2.5)  # past the answer's validity (valid=1s here, 10 s in the shipped file; nginx counts seconds)
        answers = collections.Counter(client.get("/healthz").text for _ in range(30))
    assert set(answers) == {"127.0.0.2", "127.0.0.3", "127.0.0.4"}


def test_telegrams_posts_reach_a_bot_replica_with_their_secret_header(proxy: Proxy) -> None:
    update = {"update_id": 1}
    headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
    answer = httpx.post(f"{proxy.webhook}/telegram", json=update, headers=headers, timeout=10)
    assert (answer.status_code, answer.text) == (200, "127.0.0.5")
    assert proxy.replicas["127.0.0.5"].headers[-1]["X-Telegram-Bot-Api-Secret-Token"] == "s3cret"
    assert not any(r.seen for a, r in proxy.replicas.items() if a != "127.0.0.5")
