"""A local stand-in of the Hugging Face hub, serving folders as repositories to `huggingface_hub`.

It answers what `snapshot_download`/`hf_hub_download` ask (huggingface_hub 2.x): the model info
`/api/models/{repo}/revision/{rev}`, the file tree `/api/models/{repo}/tree/{rev}`, and HEAD/GET
`/{repo}/resolve/{rev}/{path}` with `X-Repo-Commit`, `ETag`, `Content-Length` and Range requests. Every request is
recorded, so tests can see what was fetched; `cut_after` drops the connection part-way through a file's first GET.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)$")
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    range: str | None


@dataclass
class HubStub:
    repos: dict[str, Path]
    commit: str = COMMIT
    cut_after: dict[str, int] = field(default_factory=dict)
    """File path -> bytes sent before the connection is dropped, once per file."""
    down_after_cut: bool = False
    """After a cut, answer 503 to the next request for that file: the client gives up, as when a process dies."""
    _down: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def file_gets(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "GET" and "/resolve/" in s.path]

    def files(self, repo: str) -> dict[str, Path]:
        root = self.repos[repo]
        return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}

    def __enter__(self) -> HubStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                stub.handle(self, head=True)

            def do_GET(self) -> None:  # noqa: N802
                stub.handle(self, head=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def handle(self, request: BaseHTTPRequestHandler, *, head: bool) -> None:
        path = unquote(urlsplit(request.path).path)
        self.seen.append(Seen("HEAD" if head else "GET", path, request.headers.get("Range")))
        if (match := TREE.match(path)) and match["repo"] in self.repos:
            tree = [
                {"type": "file", "path": name, "size": p.stat().st_size, "oid": sha1(p)}
                for name, p in self.files(match["repo"]).items()
            ]
            return self.json(request, tree)
        if (match := INFO.match(path)) and match["repo"] in self.repos:
            siblings = [{"rfilename": name} for name in self.files(match["repo"])]
            return self.json(
                request,
                {
                    "id": match["repo"],
                    "modelId": match["repo"],
                    "sha": self.commit,
                    "siblings": siblings,
                    "private": False,
                },
            )
        if (match := RESOLVE.match(path)) and match["repo"] in self.repos:
            if match["path"] in self._down and not head:
                self._down.discard(match["path"])
                request.send_response(503)
                request.send_header("Content-Length", "0")
                request.end_headers()
                return None
            file = self.files(match["repo"]).get(match["path"])
            if file is not None:
                return self.send_file(request, match["path"], file, head=head)
            request.send_response(404)
            request.send_header("X-Error-Code", "EntryNotFound")
            request.send_header("X-Repo-Commit", self.commit)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return None
        request.send_response(404)
        request.send_header("X-Error-Code", "RepoNotFound")
        request.send_header("Content-Length", "0")
        request.end_headers()
        return None

    def json(self, request: BaseHTTPRequestHandler, body: object) -> None:
        data = json.dumps(body).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def send_file(self, request: BaseHTTPRequestHandler, name: str, file: Path, *, head: bool) -> None:
        data = file.read_bytes()
        start = 0
        ranged = request.headers.get("Range")
        if ranged and (m := re.match(r"bytes=(\d+)-", ranged)):
            start = int(m[1])
        body = data[start:]
        request.send_response(206 if start else 200)
        request.send_header("X-Repo-Commit", self.commit)
        request.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        request.send_header("Content-Length", str(len(body)))
        if start:
            request.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        request.end_headers()
        if head:
            return
        cut = self.cut_after.pop(name, None)
        if cut is not None and cut < len(body):
            if self.down_after_cut:
                self._down.add(name)
            request.wfile.write(body[:cut])
            request.wfile.flush()
            request.close_connection = True
            request.connection.shutdown(2)  # the client sees a body shorter than announced
            return
        request.wfile.write(body)


def sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()  # noqa: S324 - git's blob id style, not security
