"""The default gallery: `gallery bootstrap` against a local stand-in of the Art Institute of Chicago's API (its
`/artworks/search` with the query parsed and applied, and its IIIF image server), with the tiny models."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from inference import gallery
from inference.fetch import STATUS_LOG
from inference.gallery_bootstrap import EX_TEMPFAIL, BootstrapSettings, FetchIncomplete, bootstrap, gather
from inference.gallery_store import Gallery
from inference.models import Models
from inference.museum import ArtInstituteOfChicago, aic_work, genre_from_titles
from tests.factories import image_bytes, synthetic_artwork, textured_artwork

CONTACT = "gallery-admin@example.org"
FAST_FETCH = {"backoff": 0.01, "retries": 1}
"""Retries without the real backoff (1, 2, 4, 8 s), so a test of failures takes milliseconds."""
QUICK_BUILD = {"identify_calibration": 2, "batch_size": 8}
MAX_IMAGE_MB = 0.05
IIIF_SIZE = "full/843,/0/default.jpg"
JITTER = 0.03


@dataclass
class Record:
    """An artwork as the AIC's search index holds it (the fields the client asks for, and those it filters on)."""

    id: int
    title: str
    image_id: str | None
    artist_title: str = "Unknown"
    date_display: str = ""
    style_title: str | None = None
    subject_titles: list[str] = field(default_factory=list)
    term_titles: list[str] = field(default_factory=lambda: ["oil paint", "painting"])
    classification_titles: list[str] = field(default_factory=lambda: ["painting", "european painting"])
    credit_line: str = "Mr. and Mrs. Martin A. Ryerson Collection"
    is_public_domain: bool = True
    is_boosted: bool = False
    artwork_type_title: str = "Painting"

    def source(self) -> dict[str, Any]:
        return {**self.__dict__, "artist_display": f"{self.artist_title}\nsomewhere, 1800-1900"}


def catalogue() -> list[Record]:
    return [
        Record(
            205,
            "Paris Street; Rainy Day",
            "img-paris",
            "Gustave Caillebotte",
            "1877",
            "Impressionism",
            ["cityscapes", "streets", "umbrellas"],
            is_boosted=True,
        ),
        Record(101, "Water Lilies", "img-lilies", "Claude Monet", "1906", "Impressionism", ["landscapes", "ponds"]),
        Record(102, "A Study Without Photograph", None, "Anonymous", "c. 1850"),
        Record(103, "Still Under Copyright", "img-modern", "Living Painter", "1990", is_public_domain=False),
        Record(104, "A Bronze Horse", "img-bronze", "Sculptor", "1900", artwork_type_title="Sculpture"),
        Record(106, "An Enormous Canvas", "img-huge", "Painter of Big Things", "1860"),
        Record(107, "The Flaky Server", "img-flaky", "Jean Dupont", "1870", "Realism", ["animals", "horses"]),
        Record(108, "The Busy Server", "img-busy", "Anna Weber", "1790", "Rococo", ["mythology", "Venus"]),
        Record(109, "Portrait of a Woman", "img-portrait", "Rembrandt van Rijn", "1632", "Baroque", ["portraits"]),
    ]


def expected_gallery() -> dict[str, dict[str, str]]:
    """What the gallery must show: every public-domain painting with an image that is not over the size cap."""
    return {
        "Paris Street; Rainy Day": {"artist": "Gustave Caillebotte", "style": "Impressionism", "genre": "cityscape"},
        "Water Lilies": {"artist": "Claude Monet", "style": "Impressionism", "genre": "landscape"},
        "The Flaky Server": {"artist": "Jean Dupont", "style": "Realism", "genre": "animal painting"},
        "The Busy Server": {"artist": "Anna Weber", "style": "Rococo", "genre": "mythological painting"},
        "Portrait of a Woman": {"artist": "Rembrandt van Rijn", "style": "Baroque", "genre": "portrait"},
    }


@dataclass
class Seen:
    path: str
    at: float
    headers: dict[str, str]

    @property
    def is_search(self) -> bool:
        return self.path.startswith("/api/v1/artworks/search")

    def query(self) -> dict[str, Any]:
        return dict(json.loads(parse_qs(urlsplit(self.path).query)["params"][0]))


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client closing its kept-alive connection
            super().handle_error(request, client_address)


class MuseumServer:
    """The AIC stand-in. The search applies the `bool.filter` terms and id range it receives (an unknown clause is
    a 400, so a query the real index would read differently fails here too), sorts by id, caps `limit` at 100 and
    returns only the fields asked. Faults queue per path: (status, headers) answers given before the real one."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.images = {
            r.image_id: image_bytes(synthetic_artwork(i, (120, 96))) for i, r in enumerate(records) if r.image_id
        }
        self.images["img-huge"] = image_bytes(textured_artwork(9, 500), quality=95)
        self.seen: list[Seen] = []
        self.faults: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.cut_after: int | None = None
        """Once this many images have been served whole, every image answer is cut off half-way through."""
        self.served_images = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                with server.lock:
                    server.seen.append(Seen(self.path, time.monotonic(), dict(self.headers.items())))
                    status, headers, body, cut = server.answer(self.path)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                if cut:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if cut else body)
                if cut:
                    self.close_connection = True

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.api = f"{self.url}/api/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, raw: str) -> tuple[int, dict[str, str], bytes, bool]:
        path = urlsplit(raw).path
        queued = self.faults.get(path)
        if queued:
            status, headers = queued.pop(0)
            return status, headers, b'{"error": "try later"}', False
        if path == "/api/v1/artworks/search":
            return self.search(parse_qs(urlsplit(raw).query))
        parts = path.split("/")
        if path.startswith("/iiif/2/") and "/".join(parts[4:]) == IIIF_SIZE and parts[3] in self.images:
            cut = self.cut_after is not None and self.served_images >= self.cut_after
            self.served_images += 0 if cut else 1
            return 200, {"Content-Type": "image/jpeg"}, self.images[parts[3]], cut
        return 404, {"Content-Type": "application/json"}, b'{"status": 404, "error": "Not found"}', False

    def search(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes, bool]:
        def refuse(detail: str) -> tuple[int, dict[str, str], bytes, bool]:
            return 400, {"Content-Type": "application/json"}, json.dumps({"detail": detail}).encode(), False

        body = json.loads(query["params"][0])
        limit = int(body.get("limit", 10))
        if limit > 100:
            return refuse("limit cannot exceed 100")
        if body.get("sort") != [{"id": "asc"}]:
            return refuse(f"unexpected sort {body.get('sort')}")
        rows = [r.source() for r in self.records]
        for clause in body["query"]["bool"]["filter"]:
            if "term" in clause:
                [(name, value)] = clause["term"].items()
                rows = [r for r in rows if r[name.removesuffix(".keyword")] == value]
            elif "range" in clause and list(clause["range"]) == ["id"]:
                rows = [r for r in rows if r["id"] > clause["range"]["id"]["gt"]]
            else:
                return refuse(f"unknown filter {clause}")
        rows.sort(key=lambda r: r["id"])
        data = [{name: r.get(name) for name in body["fields"]} for r in rows[:limit]]
        answer = {
            "pagination": {"total": len(rows), "limit": limit, "offset": 0, "current_page": 1},
            "data": data,
            "config": {"iiif_url": f"{self.url}/iiif/2", "website_url": "https://www.artic.edu"},
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode(), False

    def searches(self) -> list[Seen]:
        return [s for s in self.seen if s.is_search]

    def image_hits(self, image_id: str) -> list[Seen]:
        return [s for s in self.seen if s.path == f"/iiif/2/{image_id}/{IIIF_SIZE}"]


@pytest.fixture
def museum() -> Iterator[MuseumServer]:
    server = MuseumServer(catalogue())
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def settings_for(server: MuseumServer, **overrides: Any) -> BootstrapSettings:
    values: dict[str, Any] = {
        "museum_api_url": server.api,
        "museum_contact": CONTACT,
        "fetch_delay": 0.0,
        "max_image_mb": MAX_IMAGE_MB,
        **overrides,
    }
    return BootstrapSettings(**values)


def test_public_domain_paintings_become_a_gallery_with_their_metadata_politely_and_only_once(
    museum: MuseumServer, tiny_models: Models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    museum.faults["/api/v1/artworks/search"] = [(429, {"Retry-After": "1"})]
    museum.faults[f"/iiif/2/img-flaky/{IIIF_SIZE}"] = [(500, {})]
    museum.faults[f"/iiif/2/img-busy/{IIIF_SIZE}"] = [(429, {"Retry-After": "1"})]
    assert len(museum.images["img-huge"]) > MAX_IMAGE_MB * 1024 * 1024
    out = tmp_path / "gallery"

    report = bootstrap(
        out,
        settings_for(museum),
        lambda: tiny_models,
        progress=False,
        build_options=QUICK_BUILD,
        fetch_options=FAST_FETCH,
    )

    assert report is not None
    built = Gallery.load(out)
    shown = {a.title: {"artist": a.artist, "style": a.style, "genre": a.genre} for a in built.artworks}
    assert shown == expected_gallery()
    paris = next(a for a in built.artworks if a.title.startswith("Paris"))
    assert paris.id == 0  # boosted works come first
    assert paris.year == "1877" and paris.file == f"{museum.url}/iiif/2/img-paris/{IIIF_SIZE}"
    assert [s.file for s in report.skipped] == [f"{museum.url}/iiif/2/img-huge/{IIIF_SIZE}"]
    assert "too large" in report.skipped[0].reason
    credits = (out / ".museum" / "works.csv").read_text()
    assert "https://www.artic.edu/artworks/205" in credits and "Ryerson" in credits

    # 429 then OK, waiting as long as Retry-After says; 500 then OK
    busy = museum.image_hits("img-busy")
    assert len(busy) == 2 and busy[1].at - busy[0].at >= 0.95
    searches = museum.searches()
    assert searches[1].at - searches[0].at >= 0.95 and searches[0].query() == searches[1].query()
    assert len(museum.image_hits("img-flaky")) == 2
    assert museum.image_hits("img-lilies") and not museum.image_hits("img-modern")  # never listed
    # the museum is told who is asking, with a way to reach them
    assert all("ArtMatch" in s.headers["User-Agent"] and CONTACT in s.headers["User-Agent"] for s in museum.seen)
    assert all(s.headers["AIC-User-Agent"] == s.headers["User-Agent"] for s in searches)
    assert all(set(s.query()["fields"]) >= {"image_id", "artist_title", "style_title"} for s in searches)

    sent, manifest = len(museum.seen), (out / "manifest.json").stat().st_mtime_ns
    code = gallery.main(["bootstrap", "--out", str(out), "--museum-api-url", museum.api, "--no-progress"])

    assert code == 0 and "already built" in capsys.readouterr().out
    assert len(museum.seen) == sent  # not one request
    assert (out / "manifest.json").stat().st_mtime_ns == manifest  # nothing rebuilt


def test_a_fetch_cut_off_midway_resumes_with_only_the_missing_images(museum: MuseumServer, tmp_path: Path) -> None:
    museum.cut_after = 2  # then the connection drops half-way through every image
    out = tmp_path / "gallery"
    settings = settings_for(museum)

    with pytest.raises(FetchIncomplete, match="3 image.* Rerun the same command"):
        gather(out, settings, progress=False, fetch_options=FAST_FETCH)

    downloads = out / ".downloads"
    assert not list(downloads.glob("*.part"))  # a half-received image is never kept
    kept = {p.name for p in downloads.iterdir() if p.name != STATUS_LOG}
    assert len(kept) == 2
    first_run = {s.path for s in museum.seen if not s.is_search}
    searches = len(museum.searches())

    museum.cut_after = None
    before = len(museum.seen)
    ingested = gather(out, settings, progress=False, fetch_options=FAST_FETCH)

    again = museum.seen[before:]
    assert not any(s.is_search for s in again)  # the listing is kept
    assert len(museum.searches()) == searches
    fetched_now = sorted(s.path.split("/")[3] for s in again)
    assert fetched_now == ["img-busy", "img-flaky", "img-portrait"]  # the three cut off, once each
    assert {p.split("/")[3] for p in first_run} == {*fetched_now, "img-paris", "img-lilies", "img-huge"}
    local = {Path(i.name).parts[-5]: i.path for i in ingested.items}  # .../iiif/2/<image_id>/full/843,/0/default.jpg
    assert set(local) == {"img-paris", "img-lilies", "img-flaky", "img-busy", "img-portrait"}
    assert all(path is not None and path.read_bytes() == museum.images[key] for key, path in local.items())


def test_requests_to_the_museum_keep_the_configured_pace(museum: MuseumServer, tmp_path: Path) -> None:
    delay = 0.15
    gather(tmp_path / "gallery", settings_for(museum, fetch_delay=delay), progress=False, fetch_options=FAST_FETCH)

    for searches in (True, False):  # the API, then the image server
        times = [s.at for s in museum.seen if s.is_search is searches]
        assert len(times) >= 2
        # measured where the requests arrive, so one may be late by a scheduler's tick and the next look early
        assert times[-1] - times[0] >= (len(times) - 1) * delay - JITTER
        assert min(b - a for a, b in zip(times, times[1:], strict=False)) >= delay - 2 * JITTER


def test_the_listing_pages_by_id_and_stops_at_the_number_asked(museum: MuseumServer) -> None:
    museum.records = [Record(1000 + i, f"Work {i}", f"img-{i}") for i in range(250)]
    client = ArtInstituteOfChicago(museum.api, delay=0)

    works = client.works(230, progress=False)

    assert [w.museum_id for w in works] == [str(1000 + i) for i in range(230)]
    cursors = [s.query()["query"]["bool"]["filter"][-1]["range"]["id"]["gt"] for s in museum.searches()]
    boosted = [s.query()["query"]["bool"]["filter"][2]["term"]["is_boosted"] for s in museum.searches()]
    assert boosted == [True, False, False, False] and cursors == [0, 0, 1099, 1199]


def test_the_operators_own_folder_is_built_instead_and_the_museum_never_asked(
    museum: MuseumServer,
    tiny_model_settings: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "mine"
    for relative, seed in [
        ("Impressionism/claude-monet_haystacks-1891.jpg", 1),
        ("Cubism/juan-gris_still-life-with-a-guitar-1913.jpg", 2),
        ("Realism/gustave-courbet_the-wave-1869.jpg", 3),
    ]:
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        synthetic_artwork(seed).save(folder / relative)
    monkeypatch.setenv("GALLERY_SOURCE", str(folder))
    monkeypatch.setenv("GALLERY_MUSEUM_API_URL", museum.api)
    flags = [
        f"--{name.replace('_', '-')}={tiny_model_settings[name]}"
        for name in ("clip_arch", "clip_weights", "clip_config", "clip_tokenizer", "text_model", "llava_path")
    ]
    out = tmp_path / "gallery"

    code = gallery.main(
        ["bootstrap", "--out", str(out), "--no-progress", "--identify-calibration", "2", "--device", "cpu"]
        + ["--quantization", "none", "--max-new-tokens", "4", *flags]
    )

    assert code == 0 and "3 artworks" in capsys.readouterr().out
    works = {a.title: (a.artist, a.year, a.style) for a in Gallery.load(out).artworks}
    assert works == {
        "Haystacks": ("Claude Monet", "1891", "Impressionism"),
        "Still life with a guitar": ("Juan Gris", "1913", "Cubism"),
        "The wave": ("Gustave Courbet", "1869", "Realism"),
    }
    assert museum.seen == []
    assert not (out / ".museum").exists()


def test_a_museum_asking_to_wait_too_long_ends_the_run_for_a_later_retry(
    museum: MuseumServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    museum.faults[f"/iiif/2/img-lilies/{IIIF_SIZE}"] = [(429, {"Retry-After": "3600"})]
    out = tmp_path / "gallery"
    args = ["bootstrap", "--out", str(out), "--museum-api-url", museum.api, "--fetch-delay", "0", "--no-progress"]

    code = gallery.main(args)

    assert code == EX_TEMPFAIL
    assert "asked to wait 3600 s" in capsys.readouterr().err
    assert not (out / "manifest.json").exists()
    assert len(museum.image_hits("img-lilies")) == 1  # no retry within the run: it waits for the next one


def test_a_museum_that_refuses_the_search_stops_the_bootstrap_with_its_answer(
    museum: MuseumServer, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit, match="the museum could not be listed: .*HTTP 404"):
        gallery.main(["bootstrap", "--out", str(tmp_path / "g"), "--museum-api-url", f"{museum.url}/nope"])

    assert len(museum.seen) == 1  # a 404 is not retried


@pytest.mark.parametrize(
    ("titles", "genre"),
    [
        (["portraits", "women"], "portrait"),
        (["landscapes", "portraits"], "landscape"),  # the preferred subject first
        (["Christianity", "Madonna and Child"], "religious painting"),
        (["still lifes", "fruit"], "still life"),
        (["seated figures", "oil paint"], ""),  # "sea" inside a word names no seascape
        (["painting", "european painting"], ""),
    ],
)
def test_subject_titles_name_a_genre_the_tagger_reads(titles: list[str], genre: str) -> None:
    assert genre_from_titles(titles) == genre


def test_a_record_without_an_image_or_outside_the_public_domain_is_left_out() -> None:
    base = {"id": 7, "title": "T", "image_id": "abc", "is_public_domain": True, "artist_display": "A. Painter\nx"}

    work = aic_work(base, "https://iiif.example/iiif/2/")

    assert work is not None and work.artist == "A. Painter"
    assert work.image_url == "https://iiif.example/iiif/2/abc/full/843,/0/default.jpg"
    assert aic_work({**base, "image_id": None}, "https://iiif.example") is None
    assert aic_work({**base, "is_public_domain": False}, "https://iiif.example") is None
