"""A gallery on a fresh machine, by itself: `python -m inference.gallery bootstrap --out DIR`.

Run once before the service starts (compose's one-shot `gallery` service), it decides in this order:

1. DIR already holds a built gallery (its manifest, written last by a build): nothing to do. No request is sent,
   no model loaded; the command exits 0 at once.
2. `GALLERY_SOURCE` names the operator's own folder tree, CSV or Parquet: that is built, as `build --source` would
   (`inference.ingest`); the museum is never contacted.
3. Otherwise public-domain paintings are listed from a museum's open-access API (`inference.museum`; the Art
   Institute of Chicago by default) into `DIR/.museum/works.csv`: an ordinary source table (`url`, title, artist,
   year, style, genre, plus the museum id, the work's page and credit line, which the gallery itself does not
   carry). It is built like any table: the images are fetched by `inference.fetch` into `DIR/.downloads/` (one
   request a second, a User-Agent, retries honouring `Retry-After`, a size cap, `.part` files that never count)
   and the gallery is built by `inference.gallery_build`.

Every step resumes. The listing is kept once complete (`listing.json` records what was asked), so a rerun sends no
search; downloads are kept per URL; the build keeps its finished batches. A fetch left with transient failures
(429s asking for longer than two minutes, 5xx, a dropped connection) builds nothing, so that a gallery is never
frozen short of works: the command exits 75 (EX_TEMPFAIL) and a rerun fetches only what is missing.

How many works: `GALLERY_MUSEUM_WORKS`, 2000 by default, the low end of the "few thousand" a default gallery
should hold, because every work costs one image request (a second each, at the AIC's pace) and one description
(the describer is the slow part of a build). Estimates, not measured here (this machine has no internet): an
843-px JPEG from the AIC's image server is about 100-250 KB, so 2000 works are about 0.3 GB in `.downloads/` plus
as much again for the gallery's display copies; listing takes 20-40 search requests (boosted works first, then
100 a page) and the images about 2000 s, some 35 minutes at one request a second.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from inference.ingest import Ingested, ingest
from inference.museum import AIC_API_URL, MUSEUMS, Museum, MuseumError, MuseumWork, user_agent

if TYPE_CHECKING:
    from inference.gallery_build import BuildReport
    from inference.models import Models

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
"""`inference.gallery_store.MANIFEST`, named here so that the "already built" answer imports no FAISS."""
MUSEUM_DIR = ".museum"
WORKS_TABLE = "works.csv"
LISTING = "listing.json"
TABLE_COLUMNS = ("url", "title", "artist", "year", "style", "genre", "museum", "museum_id", "page_url", "credit_line")
EX_TEMPFAIL = 75


class BootstrapSettings(BaseSettings):
    """Where the default gallery comes from: `GALLERY_*` environment variables (or `.env`); flags override them.
    An empty variable counts as unset, so compose can pass `${GALLERY_SOURCE:-}` through."""

    model_config = SettingsConfigDict(env_prefix="GALLERY_", env_file=".env", extra="ignore", env_ignore_empty=True)

    source: Path | None = Field(
        default=None,
        description="The operator's own folder tree, CSV or Parquet (as `build --source` takes); None fetches the "
        "default gallery from the museum.",
    )
    metadata: Path | None = Field(default=None, description="A metadata CSV for a folder-tree source.")
    museum: Literal["aic"] = Field(default="aic", description="Which open-access museum (`inference.museum`).")
    museum_works: int = Field(
        default=2000,
        ge=1,
        description="How many public-domain paintings to fetch: the low end of a few thousand, because each costs "
        "an image request (a second) and a description (see the module docstring).",
    )
    museum_api_url: str = Field(default=AIC_API_URL, description="The museum API's base URL (a mirror, a test).")
    museum_image_url: str | None = Field(
        default=None, description="IIIF image base URL; None takes the one the API's answers name."
    )
    museum_contact: str = Field(
        default="",
        description="An e-mail or URL put in the User-Agent, so the museum can reach whoever runs this if the "
        "fetch misbehaves (the AIC asks for one).",
    )
    fetch_delay: float = Field(
        default=1.0,
        ge=0,
        description="Seconds between requests to one host: the AIC throttles anonymous clients at 60 a minute and "
        "asks scrapers for one a second.",
    )
    max_image_mb: float = Field(
        default=5.0,
        gt=0,
        description="A download above this is abandoned and the work skipped (an 843-px JPEG is a few hundred KB).",
    )

    def fetch_options(self) -> dict[str, Any]:
        """Keyword arguments of `inference.fetch.Fetcher`."""
        return {
            "per_host_delay": self.fetch_delay,
            "max_bytes": int(self.max_image_mb * 1024 * 1024),
            "user_agent": user_agent(self.museum_contact),
        }

    def make_museum(self) -> Museum:
        return MUSEUMS[self.museum](
            self.museum_api_url,
            image_url=self.museum_image_url,
            user_agent=user_agent(self.museum_contact),
            delay=self.fetch_delay,
        )


class FetchIncomplete(RuntimeError):
    """Some images failed transiently; nothing was built, and a rerun fetches only what is missing."""

    def __init__(self, ingested: Ingested) -> None:
        examples = "; ".join(f"{s.file}: {s.reason}" for s in ingested.transient[:3])
        super().__init__(
            f"{len(ingested.transient)} image(s) could not be fetched for now ({examples}); nothing was built. "
            f"Rerun the same command to resume: the {len(ingested.items)} images already here are kept."
        )
        self.ingested = ingested


def is_built(out: Path) -> bool:
    """A build writes the manifest last (and removes it first when it replaces a gallery): present means whole."""
    return (Path(out) / MANIFEST).is_file()


def museum_table(
    out: Path, settings: BootstrapSettings, *, progress: bool = True, museum: Museum | None = None
) -> Path:
    """`out/.museum/works.csv`: the museum's works as a source table, listed once; a rerun asking for the same
    works reads it back and sends no request."""
    folder = Path(out) / MUSEUM_DIR
    table, listing = folder / WORKS_TABLE, folder / LISTING
    asked = {
        "museum": settings.museum,
        "api_url": settings.museum_api_url,
        "image_url": settings.museum_image_url,
        "works": settings.museum_works,
    }
    if table.is_file() and listing.is_file():
        try:
            if json.loads(listing.read_text(encoding="utf-8")).get("asked") == asked:
                return table
        except ValueError:
            pass  # a listing record cut by a crash: list again
    museum = museum or settings.make_museum()
    logger.info("listing up to %d public-domain paintings from %s", settings.museum_works, museum.credit)
    works = museum.works(settings.museum_works, progress=progress)
    if not works:
        raise MuseumError(f"{settings.museum_api_url} listed no public-domain paintings with an image")
    folder.mkdir(parents=True, exist_ok=True)
    _write_table(table, works, museum.name)
    _replace_text(listing, json.dumps({"asked": asked, "listed": len(works), "credit": museum.credit}, indent=2))
    logger.info("listed %d works into %s (%d requests)", len(works), table, museum.requests)
    return table


def _write_table(table: Path, works: list[MuseumWork], museum: str) -> None:
    scratch = table.with_name(table.name + ".part")
    with scratch.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        for work in works:
            row = asdict(work)
            writer.writerow({"url": row.pop("image_url"), "museum": museum, **row})
    os.replace(scratch, table)


def _replace_text(path: Path, text: str) -> None:
    scratch = path.with_name(path.name + ".part")
    scratch.write_text(text + "\n", encoding="utf-8")
    os.replace(scratch, path)


def gather(
    out: Path,
    settings: BootstrapSettings,
    *,
    progress: bool = True,
    fetch_options: Mapping[str, Any] | None = None,
    museum: Museum | None = None,
) -> Ingested:
    """The local images to build from: the operator's source, or the museum's works fetched into
    `out/.downloads/`. Raises `FetchIncomplete` when some failed transiently. `fetch_options` add to (or override)
    the settings' `inference.fetch.Fetcher` arguments; `museum` replaces the one the settings name."""
    if settings.source is not None:
        source, metadata = settings.source, settings.metadata
    else:
        source, metadata = museum_table(out, settings, progress=progress, museum=museum), None
    options = {**settings.fetch_options(), **dict(fetch_options or {})}
    ingested = ingest(source, out, metadata_csv=metadata, progress=progress, fetch_options=options)
    if ingested.transient:
        raise FetchIncomplete(ingested)
    return ingested


def bootstrap(
    out: Path,
    settings: BootstrapSettings,
    load_models: Callable[[], Models],
    *,
    progress: bool = True,
    build_options: Mapping[str, Any] | None = None,
    fetch_options: Mapping[str, Any] | None = None,
    museum: Museum | None = None,
) -> BuildReport | None:
    """Build the default gallery into `out` unless one is there (None then). Images first, models after: a
    network failure costs no model load, and a user source without URLs needs no network at all.
    `build_options` go to `inference.gallery_build.build_gallery`; the others to `gather`."""
    out = Path(out)
    if is_built(out):
        return None
    ingested = gather(out, settings, progress=progress, fetch_options=fetch_options, museum=museum)
    from inference.gallery_build import build_gallery  # numpy, FAISS and the models only when there is work

    report = build_gallery(
        None, out, load_models(), sources=ingested.items, progress=progress, **dict(build_options or {})
    )
    report.skipped.extend(ingested.failures)
    return report
