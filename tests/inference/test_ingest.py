"""Ingesting the common gallery layouts: a WikiArt-style folder tree, CSV and Parquet tables of paths or URLs, and
polite, resumable URL fetching against a real local HTTP server."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inference.fetch import STATUS_LOG, Fetcher, retry_after_seconds
from inference.ingest import from_folder_tree, from_table, ingest, parse_wikiart_name
from tests.factories import image_bytes, synthetic_artwork, textured_artwork

MAX_BYTES = 40_000


def test_wikiart_names_give_style_artist_title_and_year() -> None:
    parsed = parse_wikiart_name("Post_Impressionism/vincent-van-gogh_the-starry-night-1889.jpg")
    assert parsed == {
        "style": "Post Impressionism",
        "artist": "Vincent Van Gogh",
        "title": "The starry night",
        "year": "1889",
    }
    assert parse_wikiart_name("Early-Renaissance/giotto_lamentation.jpg")["style"] == "Early Renaissance"
    no_artist = parse_wikiart_name("untitled-study.png")
    assert no_artist == {"style": "", "artist": "", "title": "Untitled study", "year": ""}


def test_a_folder_tree_becomes_items_with_parsed_metadata_and_the_csv_wins(tmp_path: Path) -> None:
    tree = tmp_path / "wikiart"
    for relative, seed in [
        ("Cubism/pablo-picasso_guernica-1937.jpg", 1),
        ("Post_Impressionism/paul-cezanne_card-players.jpg", 2),
        ("Post_Impressionism/.hidden.jpg", 3),
    ]:
        (tree / relative).parent.mkdir(parents=True, exist_ok=True)
        synthetic_artwork(seed).save(tree / relative)
    (tree / "notes.txt").write_text("not an image")
    metadata = tmp_path / "extra.csv"
    metadata.write_text("file,title,year\nPost_Impressionism/paul-cezanne_card-players.jpg,The Card Players,1895\n")

    items = from_folder_tree(tree, metadata)

    assert [item.name for item in items] == [
        "Cubism/pablo-picasso_guernica-1937.jpg",
        "Post_Impressionism/paul-cezanne_card-players.jpg",
    ]
    assert items[0].metadata == {
        "title": "Guernica",
        "artist": "Pablo Picasso",
        "year": "1937",
        "style": "Cubism",
        "genre": "",
    }
    assert items[1].metadata["title"] == "The Card Players" and items[1].metadata["year"] == "1895"
    assert items[1].metadata["artist"] == "Paul Cezanne" and items[1].metadata["style"] == "Post Impressionism"
    assert all(item.path is not None and item.path.is_file() for item in items)


def _image_folder(root: Path) -> tuple[Path, Path]:
    (root / "pics").mkdir(parents=True)
    synthetic_artwork(1).save(root / "pics" / "a.jpg")
    elsewhere = root / "elsewhere.png"
    synthetic_artwork(2).save(elsewhere)
    return root / "pics" / "a.jpg", elsewhere


def test_a_csv_of_relative_and_absolute_paths(tmp_path: Path) -> None:
    relative, absolute = _image_folder(tmp_path)
    table = tmp_path / "works.csv"
    with table.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["path", "title", "artist", "year", "style", "genre", "museum"])
        writer.writerow(["pics/a.jpg", "Dawn", "Ann Painter", "1901", "Fauvism", "landscape", "x"])
        writer.writerow([str(absolute), "Dusk", "", "", "", "", ""])
        writer.writerow(["", "No file", "", "", "", "", ""])
        writer.writerow(["pics/a.jpg", "Again", "", "", "", "", ""])

    listed = from_table(table)

    assert [(i.name, i.path) for i in listed.items] == [("pics/a.jpg", relative), (absolute.as_posix(), absolute)]
    assert dict(listed.items[0].metadata) == {
        "title": "Dawn",
        "artist": "Ann Painter",
        "year": "1901",
        "style": "Fauvism",
        "genre": "landscape",
    }
    assert [(f.file, f.reason) for f in listed.failures] == [
        ("row 4", "no path or url"),
        ("pics/a.jpg", "row 5: listed twice"),
    ]


def test_a_parquet_of_paths_with_typed_columns(tmp_path: Path) -> None:
    relative, _ = _image_folder(tmp_path)
    table = tmp_path / "works.parquet"
    pq.write_table(pa.table({"path": ["pics/a.jpg"], "title": ["Dawn"], "year": [1901], "genre": [None]}), table)

    listed = from_table(table)

    assert [(i.name, i.path) for i in listed.items] == [("pics/a.jpg", relative)]
    assert listed.items[0].metadata["year"] == "1901" and listed.items[0].metadata["genre"] == ""


def test_a_table_without_a_path_or_url_column_is_refused_clearly(tmp_path: Path) -> None:
    table = tmp_path / "bad.csv"
    table.write_text("image,title\na.jpg,x\n")
    with pytest.raises(ValueError, match="neither a 'path' nor a 'url' column"):
        from_table(table)


# ---- URLs ---------------------------------------------------------------------------------------------------


class ArtServer:
    """A local image host: good images, a 404, one 429-then-OK, a flaky 503, an oversized image, an HTML page and
    bytes that claim to be a JPEG. Records every request (path, time, User-Agent)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, float, str]] = []
        self.busy_left = 1
        self.flaky_left = 99
        self.jpeg = image_bytes(synthetic_artwork(7))
        self.png = image_bytes(synthetic_artwork(8), "PNG")
        self.huge = image_bytes(textured_artwork(9, 400), "PNG")
        assert len(self.huge) > MAX_BYTES
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests.append((self.path, time.monotonic(), self.headers.get("User-Agent", "")))
                status, headers, body = server.answer(self.path)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if path_without_length(self.path):
                    self.close_connection = True  # the body ends when the connection does
                else:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        jpeg = {"Content-Type": "image/jpeg"}
        if path == "/a.jpg":
            return 200, jpeg, self.jpeg
        if path == "/b.png":
            return 200, {"Content-Type": "image/png"}, self.png
        if path == "/busy.jpg":
            if self.busy_left > 0:
                self.busy_left -= 1
                return 429, {"Retry-After": "0"}, b"slow down"
            return 200, jpeg, self.jpeg[:-2] + b"\xff\xd9"  # other bytes than a.jpg, still a JPEG
        if path == "/flaky.jpg":
            if self.flaky_left > 0:
                self.flaky_left -= 1
                return 503, {}, b"try later"
            return 200, jpeg, image_bytes(synthetic_artwork(11))
        if path in ("/huge.png", "/endless.png"):
            return 200, {"Content-Type": "image/png"}, self.huge
        if path == "/page.jpg":
            return 200, {"Content-Type": "text/html"}, b"<html>not here</html>"
        if path == "/fake.jpg":
            return 200, jpeg, b"this is no jpeg at all" * 10
        return 404, {"Content-Type": "text/plain"}, b"no such image"

    def hits(self, path: str) -> int:
        return sum(1 for p, _, _ in self.requests if p == path)


@pytest.fixture
def art_server() -> Iterator[ArtServer]:
    server = ArtServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def path_without_length(path: str) -> bool:
    return path == "/endless.png"


PATHS = [
    "/a.jpg",
    "/b.png",
    "/missing.jpg",
    "/busy.jpg",
    "/huge.png",
    "/endless.png",
    "/page.jpg",
    "/fake.jpg",
    "/flaky.jpg",
]


def _url_table(folder: Path, base: str) -> Path:
    table = folder / "remote.csv"
    with table.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["url", "title", "artist"])
        for i, path in enumerate(PATHS):
            writer.writerow([base + path, f"Remote {i}", "Somebody"])
    return table


FAST = {"per_host_delay": 0.0, "backoff": 0.01, "retries": 2, "max_bytes": MAX_BYTES}


def test_urls_are_fetched_with_failures_per_row_and_a_rerun_fetches_nothing_new(
    art_server: ArtServer, tmp_path: Path
) -> None:
    table = _url_table(tmp_path, art_server.url)
    out = tmp_path / "gallery"

    first = ingest(table, out, progress=False, fetch_options=FAST)

    names = {item.name.removeprefix(art_server.url): item for item in first.items}
    assert set(names) == {"/a.jpg", "/b.png", "/busy.jpg"}
    assert names["/a.jpg"].metadata["title"] == "Remote 0" and names["/a.jpg"].url == art_server.url + "/a.jpg"
    assert names["/a.jpg"].path is not None and names["/a.jpg"].path.read_bytes() == art_server.jpeg
    assert names["/a.jpg"].path.parent == out / ".downloads"
    reasons = {f.file.removeprefix(art_server.url): f.reason for f in first.failures}
    assert reasons == {
        "/missing.jpg": "HTTP 404",
        "/huge.png": f"too large ({len(art_server.huge)} bytes > {MAX_BYTES})",
        "/endless.png": f"too large (over {MAX_BYTES} bytes)",  # no Content-Length: cut off while streaming
        "/page.jpg": "not an image (content type text/html)",
        "/fake.jpg": "not an image (UnidentifiedImageError)",
        "/flaky.jpg": "HTTP 503",
    }
    assert art_server.hits("/busy.jpg") == 2  # 429, then OK after Retry-After
    assert art_server.hits("/flaky.jpg") == 3  # the first try and two retries
    assert art_server.hits("/missing.jpg") == 1  # a 404 is not retried
    assert all("ArtMatch" in agent for _, _, agent in art_server.requests)
    assert first.fetched == 3 and first.reused == 0
    assert (out / ".downloads" / STATUS_LOG).is_file()

    art_server.flaky_left = 0  # the transient failure is over
    before = len(art_server.requests)
    second = ingest(table, out, progress=False, fetch_options=FAST)

    assert [p for p, _, _ in art_server.requests[before:]] == ["/flaky.jpg"]  # only what failed transiently
    assert {i.name.removeprefix(art_server.url) for i in second.items} == {
        "/a.jpg",
        "/b.png",
        "/busy.jpg",
        "/flaky.jpg",
    }
    assert len(second.failures) == 5 and second.reused == 8 and second.fetched == 1

    before = len(art_server.requests)
    third = ingest(table, out, progress=False, fetch_options=FAST)
    assert len(art_server.requests) == before  # nothing left to fetch
    assert len(third.items) == 4


def test_requests_to_one_host_are_spaced_by_the_polite_delay(art_server: ArtServer, tmp_path: Path) -> None:
    fetcher = Fetcher(tmp_path / "dl", per_host_delay=0.3, retries=0)
    results = fetcher.fetch_all([f"{art_server.url}/a.jpg", f"{art_server.url}/b.png", f"{art_server.url}/x"], False)

    assert [r.path is not None for r in results] == [True, True, False]
    times = [t for _, t, _ in art_server.requests]
    assert len(times) == 3 and min(b - a for a, b in zip(times, times[1:], strict=False)) >= 0.28


def test_a_long_retry_after_gives_up_on_the_row_instead_of_stalling_the_build(
    art_server: ArtServer, tmp_path: Path
) -> None:
    art_server.busy_left = 5
    original = art_server.answer

    def far_future(path: str) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = original(path)
        if status == 429:
            headers = {"Retry-After": formatdate(time.time() + 3600, usegmt=True)}
        return status, headers, body

    art_server.answer = far_future  # type: ignore[method-assign]
    [result] = Fetcher(tmp_path / "dl", per_host_delay=0, max_wait=5).fetch_all([f"{art_server.url}/busy.jpg"], False)

    assert result.path is None and result.transient and "asked to wait" in result.reason
    assert art_server.hits("/busy.jpg") == 1


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    later = retry_after_seconds(formatdate(1_000_060, usegmt=True), now=1_000_000)
    assert later is not None and abs(later - 60) < 1
