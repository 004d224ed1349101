"""Public-domain paintings and their metadata from a museum's open-access API, for a default gallery.

A museum is anything with `name`, `credit` and `works(count)`: the paintings to fetch, each with the URL of an image
at the size a gallery needs and the metadata a gallery shows (`MuseumWork`). `inference.gallery_bootstrap` writes
them as an ordinary source table (`url,title,artist,year,style,genre` plus credits), so the images are fetched by
`inference.fetch` like any other URL table. The Art Institute of Chicago is the one implemented (its data is CC0,
and the images of works it marks `is_public_domain` are free to use); The Met's open access would be a second class
with the same three members.

Politeness, as the AIC's API documentation (https://api.artic.edu/docs/) asks: a single thread and at most one
request a second (anonymous clients are throttled at 60 requests a minute per IP); a `User-Agent` naming the
application and a contact, sent as `AIC-User-Agent` too; `fields` listing only what is read; images requested at
`/full/843,/0/default.jpg`, the size the docs ask clients to download. 429 and 5xx answers are retried with
backoff, honouring `Retry-After` (the same rules as `inference.fetch`).

Paging never goes deep: each search asks for the next 100 works after the last id seen (`range id gt`, sorted by
id). The docs allow 10,000 records per query through `page`, but the aggregator's code caps anonymous clients at
1,000 (`max_resources_guest` in art-institute-of-chicago/data-aggregator), and a cursor is indifferent to either.
Works the museum boosts (its "essentials") are listed first, so a small gallery holds its best-known paintings.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from tqdm import tqdm

from inference.fetch import TRANSIENT_STATUSES, retry_after_seconds

logger = logging.getLogger(__name__)

AIC_API_URL = "https://api.artic.edu/api/v1"
AIC_IIIF_URL = "https://www.artic.edu/iiif/2"
"""Used when a search answer carries no `config.iiif_url` (every answer documented does)."""
AIC_WEBSITE = "https://www.artic.edu"
IIIF_WIDTH = 843
"""The width the AIC asks clients to download (their image server keeps it cached); ample for a gallery, whose
display copies are at most 1280 px and whose models read 224 px."""
PAGE_SIZE = 100
"""The API's largest `limit`."""
AIC_FIELDS = (
    "id",
    "title",
    "artist_title",
    "artist_display",
    "date_display",
    "image_id",
    "is_public_domain",
    "style_title",
    "classification_titles",
    "subject_titles",
    "term_titles",
    "credit_line",
)


class MuseumError(RuntimeError):
    """The museum could not be listed (unreachable, refusing, or answering something unexpected)."""


@dataclass(frozen=True)
class MuseumWork:
    """One painting to put in the gallery: where its image is, what the gallery shows, and whom to credit."""

    museum_id: str
    image_url: str
    title: str = ""
    artist: str = ""
    year: str = ""
    style: str = ""
    genre: str = ""
    page_url: str = ""
    credit_line: str = ""


class Museum(Protocol):
    name: str
    """Short name recorded beside each work (`aic`)."""
    credit: str
    """Whom the gallery's works come from, and under what terms."""
    requests: int
    """Requests sent so far (a rerun that needs nothing sends none)."""

    def works(self, count: int, progress: bool = True) -> list[MuseumWork]:
        """Up to `count` public-domain paintings with an image, in the museum's order of prominence."""
        ...


def user_agent(contact: str = "") -> str:
    """What the museum sees: the application, and who to write to when it misbehaves."""
    who = contact.strip() or "builds an art search gallery"
    return f"ArtMatch-gallery-bootstrap/0.1 (+https://github.com/artmatch; {who})"


# AIC subject, term and classification titles -> a genre the gallery's tagger reads (`inference.tag_labels`). The
# first of a work's titles that names one wins, so its preferred subject comes before the others.
GENRE_WORDS: tuple[tuple[str, str], ...] = (
    ("portrait", r"portraits?|self-portraits?"),
    ("still life", r"still[- ]li(?:fe|fes|ves)"),
    ("flower painting", r"flowers?|floral|bouquets?"),
    ("seascape", r"seascapes?|marine|ships?|boats?|harbou?rs?|ocean|sea|coasts?|beach(?:es)?"),
    ("cityscape", r"cityscapes?|cities|city|streets?|urban|townscapes?"),
    ("landscape", r"landscapes?|rivers?|mountains?|forests?|trees|gardens?"),
    ("religious painting", r"religio(?:n|us)|christianity|saints?|madonna|virgin mary|christ|biblical|bible|angels?"),
    ("mythological painting", r"myths?|mythology|mythological|gods?|goddesses"),
    ("battle painting", r"battles?|war|military|soldiers"),
    ("history painting", r"history|historical"),
    ("nude painting", r"nudes?|nudity"),
    ("interior", r"interiors?"),
    ("animal painting", r"animals?|horses?|dogs?|cats?|birds?|cattle"),
    ("genre painting", r"genre|everyday life|leisure|domestic|peasants?"),
    ("abstract", r"abstract|abstraction|non-objective"),
)
_GENRE_PATTERNS = tuple((genre, re.compile(rf"\b(?:{words})\b", re.IGNORECASE)) for genre, words in GENRE_WORDS)


def genre_from_titles(titles: Sequence[str]) -> str:
    """The genre named by the first title that names one, '' when none does."""
    for title in titles:
        for genre, pattern in _GENRE_PATTERNS:
            if pattern.search(title):
                return genre
    return ""


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _titles(value: Any) -> list[str]:
    return [str(item) for item in value if item] if isinstance(value, list) else []


def aic_work(record: Mapping[str, Any], iiif_url: str, website_url: str = AIC_WEBSITE) -> MuseumWork | None:
    """A gallery work from one AIC search record; None for a work without an image or not in the public domain."""
    image_id = _text(record.get("image_id"))
    if not image_id or record.get("is_public_domain") is False or record.get("id") is None:
        return None
    artist = _text(record.get("artist_title")) or _text(str(record.get("artist_display") or "").split("\n")[0])
    terms = [
        *_titles(record.get("subject_titles")),
        *_titles(record.get("term_titles")),
        *_titles(record.get("classification_titles")),
    ]
    return MuseumWork(
        museum_id=str(record["id"]),
        image_url=f"{iiif_url.rstrip('/')}/{image_id}/full/{IIIF_WIDTH},/0/default.jpg",
        title=_text(record.get("title")),
        artist=artist,
        year=_text(record.get("date_display")),
        style=_text(record.get("style_title")),
        genre=genre_from_titles(terms),
        page_url=f"{website_url.rstrip('/')}/artworks/{record['id']}",
        credit_line=_text(record.get("credit_line")),
    )


class ArtInstituteOfChicago:
    """The AIC's `/artworks/search`, read politely: public-domain paintings, boosted first, then by id."""

    name = "aic"
    credit = "The Art Institute of Chicago (api.artic.edu): data CC0, images of public-domain works"

    def __init__(
        self,
        api_url: str = AIC_API_URL,
        *,
        image_url: str | None = None,
        user_agent: str = user_agent(),
        delay: float = 1.0,
        retries: int = 4,
        backoff: float = 1.0,
        max_wait: float = 120.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.image_url = image_url
        self.delay = delay
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self._sleep = sleep
        self._last_request: float | None = None
        self.requests = 0
        self._headers = {"User-Agent": user_agent, "AIC-User-Agent": user_agent, "Accept": "application/json"}
        self._timeout = timeout

    def works(self, count: int, progress: bool = True) -> list[MuseumWork]:
        found: dict[str, MuseumWork] = {}
        with (
            httpx.Client(headers=self._headers, timeout=self._timeout, follow_redirects=True) as client,
            tqdm(total=count, unit="work", desc="listing museum works", disable=not progress) as bar,
        ):
            for boosted in (True, False):
                for work in self._segment(client, boosted):
                    if work.museum_id in found:
                        continue
                    found[work.museum_id] = work
                    bar.update(1)
                    if len(found) >= count:
                        return list(found.values())
        return list(found.values())

    def _segment(self, client: httpx.Client, boosted: bool) -> Iterator[MuseumWork]:
        """The works of one segment (boosted or not), a page at a time after the last id seen."""
        cursor = 0
        while True:
            answer = self._search(client, boosted, cursor)
            records = answer.get("data")
            if not isinstance(records, list):
                raise MuseumError(f"{self.api_url}: a search answer without a `data` list")
            config = answer.get("config")
            config = config if isinstance(config, dict) else {}
            iiif = self.image_url or str(config.get("iiif_url") or AIC_IIIF_URL)
            website = str(config.get("website_url") or AIC_WEBSITE)
            ids = [record.get("id") for record in records if isinstance(record, dict)]
            numeric = [i for i in ids if isinstance(i, int)]
            for record in records:
                work = aic_work(record, iiif, website) if isinstance(record, dict) else None
                if work is not None:
                    yield work
            if len(records) < PAGE_SIZE or not numeric:
                return
            if max(numeric) <= cursor:
                raise MuseumError(f"{self.api_url}: the search did not move past id {cursor}")
            cursor = max(numeric)

    def query(self, boosted: bool, after: int) -> dict[str, Any]:
        """The search body: public-domain paintings of one segment after an id, by id, only the fields read."""
        return {
            "query": {
                "bool": {
                    "filter": [
                        {"term": {"is_public_domain": True}},
                        {"term": {"artwork_type_title.keyword": "Painting"}},
                        {"term": {"is_boosted": boosted}},
                        {"range": {"id": {"gt": after}}},
                    ]
                }
            },
            "sort": [{"id": "asc"}],
            "fields": list(AIC_FIELDS),
            "limit": PAGE_SIZE,
        }

    def _search(self, client: httpx.Client, boosted: bool, after: int) -> dict[str, Any]:
        # GET with the whole query as minified JSON in `params`: what the docs recommend for production use.
        params = {"params": json.dumps(self.query(boosted, after), separators=(",", ":"))}
        url = f"{self.api_url}/artworks/search"
        attempt = 0
        while True:
            self._polite_wait()
            self.requests += 1
            try:
                response = client.get(url, params=params)
            except httpx.HTTPError as exc:
                reason, transient, retry_after = f"network error: {type(exc).__name__}: {exc}", True, None
            else:
                if response.status_code == 200:
                    try:
                        answer = response.json()
                    except ValueError:
                        raise MuseumError(f"{url}: the answer is not JSON") from None
                    if not isinstance(answer, dict):
                        raise MuseumError(f"{url}: the answer is not a JSON object")
                    return answer
                reason = f"HTTP {response.status_code}: {response.text[:200]}"
                transient = response.status_code in TRANSIENT_STATUSES
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            attempt += 1
            if not transient or attempt > self.retries:
                raise MuseumError(f"{url}: {reason}")
            wait = retry_after if retry_after is not None else self.backoff * 2 ** (attempt - 1)
            if wait > self.max_wait:
                raise MuseumError(f"{url}: {reason}; asked to wait {wait:.0f} s")
            logger.info("museum search: %s; retrying in %.1f s", reason, wait)
            self._sleep(wait)

    def _polite_wait(self) -> None:
        if self._last_request is not None:
            remaining = self.delay - (time.monotonic() - self._last_request)
            if remaining > 0:
                self._sleep(remaining)
        self._last_request = time.monotonic()


MUSEUMS: dict[str, type[ArtInstituteOfChicago]] = {"aic": ArtInstituteOfChicago}
"""Museums by the name `GALLERY_MUSEUM` takes."""
