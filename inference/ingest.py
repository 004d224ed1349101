"""Where a gallery's images come from: the common layouts, as one list of source items.

- a folder tree as WikiArt dumps come, `Post_Impressionism/vincent-van-gogh_the-starry-night-1889.jpg`: the style
  from the folder, artist, title and a trailing year from the file name (an optional metadata CSV overrides them);
- a CSV or Parquet table with a `path` (relative to the table's folder, or absolute) or a `url` column, plus
  optional title, artist, year, style, genre.

URLs are fetched by `inference.fetch` into `<out>/.downloads/`, resumably; a row that cannot be fetched is a
per-row failure, never the end of the build.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
METADATA_FIELDS = ("title", "artist", "year", "style", "genre")


@dataclass(frozen=True)
class Skipped:
    file: str
    reason: str


def find_images(images_dir: Path, exclude: Path | None = None) -> list[Path]:
    """Image files under `images_dir`, sorted by relative path; hidden files and `exclude` left out."""
    found = []
    for path in images_dir.rglob("*"):
        relative = path.relative_to(images_dir)
        if any(part.startswith(".") for part in relative.parts):
            continue  # .DS_Store, ._photo.jpg from macOS, our own .parts
        if exclude is not None and path.resolve().is_relative_to(exclude):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(images_dir).as_posix())


@dataclass
class Metadata:
    """Rows of a metadata CSV, by image path relative to the images folder and by unambiguous file name."""

    by_path: dict[str, dict[str, str]] = field(default_factory=dict)
    by_name: dict[str, dict[str, str]] = field(default_factory=dict)

    def lookup(self, relative: str) -> dict[str, str]:
        return self.by_path.get(relative) or self.by_name.get(Path(relative).name) or {}


def read_metadata(csv_path: Path, images_dir: Path) -> Metadata:
    """Read a `file,title,artist,year,style,genre` CSV (other columns are ignored).

    `file` may be relative to the images folder or to the CSV's own folder (the shared gallery writes
    `images/x.jpg` next to `images/`); a bare file name also matches when it is unambiguous.
    """
    images_root = absolute_path(images_dir)
    metadata = Metadata()
    by_name: dict[str, list[dict[str, str]]] = {}
    with csv_path.open(newline="", encoding="utf-8-sig") as source:
        reader = csv.DictReader(source)
        if reader.fieldnames is None or "file" not in reader.fieldnames:
            raise ValueError(f"{csv_path} has no 'file' column (expected file,title,artist,year,style,genre)")
        for row in reader:
            name = (row.get("file") or "").strip()
            if not name:
                continue
            values = {key: (row.get(key) or "").strip() for key in METADATA_FIELDS}
            for candidate in (csv_path.parent / name, images_dir / name):
                absolute = absolute_path(candidate)
                if absolute.is_relative_to(images_root):
                    metadata.by_path.setdefault(absolute.relative_to(images_root).as_posix(), values)
            by_name.setdefault(Path(name).name, []).append(values)
    metadata.by_name = {name: rows[0] for name, rows in by_name.items() if len(rows) == 1}
    return metadata


def absolute_path(path: Path) -> Path:
    """Lexically absolute (no symlinks followed), like the relative paths `find_images` gives."""
    return Path(os.path.abspath(path))


TABLE_SUFFIXES = frozenset({".csv", ".parquet", ".pq"})
_YEAR = re.compile(r"^(?P<rest>.*?)[-_ ]+(?P<year>1\d{3}|20\d{2})$")


@dataclass(frozen=True)
class SourceItem:
    """One image to put in a gallery: `name` is what the artwork's `file` says (the path relative to the source,
    or the URL) and the key of resumable builds; `path` is the local file (None until a URL is fetched)."""

    name: str
    path: Path | None
    url: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Ingested:
    """Local items ready to build, and the rows that could not be used (with why)."""

    items: list[SourceItem]
    failures: list[Skipped] = field(default_factory=list)
    fetched: int = 0
    reused: int = 0
    transient: list[Skipped] = field(default_factory=list)
    """The failures that may heal (429, 5xx, network): a rerun retries them."""


def _words(text: str) -> str:
    return " ".join(part for part in re.split(r"[_\-\s]+", text) if part)


def parse_wikiart_name(relative: str) -> dict[str, str]:
    """Style, artist, title and year from a WikiArt-style relative path (empty where the name does not say).

    `Post_Impressionism/vincent-van-gogh_the-starry-night-1889.jpg` -> style "Post Impressionism", artist
    "Vincent Van Gogh", title "The starry night", year "1889". Without an `_` the whole name is the title."""
    parts = Path(relative).parts
    stem = Path(relative).stem
    artist_part, _, title_part = stem.partition("_") if "_" in stem else ("", "", stem)
    year = ""
    found = _YEAR.match(title_part)
    if found is not None and found.group("rest"):
        title_part, year = found.group("rest"), found.group("year")
    title = _words(title_part)
    return {
        "style": _words(parts[-2]) if len(parts) >= 2 else "",
        "artist": _words(artist_part).title(),
        "title": title[:1].upper() + title[1:],
        "year": year,
    }


def from_folder_tree(root: Path, metadata_csv: Path | None = None, exclude: Path | None = None) -> list[SourceItem]:
    """Every image under `root`, sorted by relative path, with metadata parsed from its folder and file name;
    non-empty fields of `metadata_csv` (file,title,artist,year,style,genre) win over the parsed ones."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"source folder {root} does not exist")
    table = read_metadata(Path(metadata_csv), root) if metadata_csv is not None else None
    items = []
    for path in find_images(root, exclude=exclude):
        relative = path.relative_to(root).as_posix()
        metadata = parse_wikiart_name(relative)
        if table is not None:
            metadata.update({k: v for k, v in table.lookup(relative).items() if v})
        items.append(SourceItem(relative, path, metadata=_complete(metadata)))
    return items


def _complete(values: Mapping[str, Any]) -> dict[str, str]:
    """All metadata fields as stripped strings (Parquet gives ints and None)."""
    out = {}
    for key in METADATA_FIELDS:
        value = values.get(key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # a year read as 1889.0
        out[key] = "" if value is None or value != value else str(value).strip()  # value != value: NaN
    return out


def read_table_rows(table: Path) -> list[dict[str, Any]]:
    """Rows of a CSV or Parquet file as dicts (Parquet through pyarrow, nothing pickled)."""
    suffix = table.suffix.lower()
    if suffix == ".csv":
        with table.open(newline="", encoding="utf-8-sig") as source:
            return list(csv.DictReader(source))
    if suffix in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        return list(pq.read_table(table).to_pylist())
    raise ValueError(f"{table}: a source table must be .csv or .parquet")


def from_table(table: Path) -> Ingested:
    """Items from a table with a `path` (or `file`) or `url` column. Local paths are relative to the table's folder
    unless absolute; rows naming no image, or naming one twice, are failures of their own row."""
    table = Path(table)
    if not table.is_file():
        raise FileNotFoundError(f"source table {table} does not exist")
    rows = read_table_rows(table)
    columns = set(rows[0]) if rows else set()
    location = next((c for c in ("path", "file") if c in columns), None)
    if location is None and "url" not in columns:
        raise ValueError(f"{table} has neither a 'path' nor a 'url' column (found: {', '.join(sorted(columns))})")
    result = Ingested([])
    seen: set[str] = set()
    for number, row in enumerate(rows, start=2 if table.suffix.lower() == ".csv" else 1):
        local = str(row.get(location) or "").strip() if location else ""
        url = str(row.get("url") or "").strip()
        metadata = _complete(row)
        if local:
            path = Path(local) if Path(local).is_absolute() else table.parent / local
            name = local if not Path(local).is_absolute() else path.as_posix()
            item = SourceItem(name, path, None, metadata)
        elif url:
            if not url.lower().startswith(("http://", "https://")):
                result.failures.append(Skipped(url, f"row {number}: not an http(s) URL"))
                continue
            item = SourceItem(url, None, url, metadata)
        else:
            result.failures.append(Skipped(f"row {number}", "no path or url"))
            continue
        if item.name in seen:
            result.failures.append(Skipped(item.name, f"row {number}: listed twice"))
            continue
        seen.add(item.name)
        result.items.append(item)
    return result


def ingest(
    source: Path,
    out_dir: Path,
    *,
    metadata_csv: Path | None = None,
    progress: bool = True,
    fetch_options: Mapping[str, Any] | None = None,
) -> Ingested:
    """The local items of `source` (a folder tree, a CSV or a Parquet file), URLs fetched into
    `<out_dir>/.downloads/`; `fetch_options` go to `inference.fetch.Fetcher`."""
    source = Path(source)
    if source.is_dir():
        return Ingested(from_folder_tree(source, metadata_csv, exclude=Path(out_dir).resolve()))
    if source.suffix.lower() not in TABLE_SUFFIXES:
        raise ValueError(f"--source {source}: expected a folder, a .csv or a .parquet file")
    listed = from_table(source)
    remote = [item for item in listed.items if item.path is None]
    if not remote:
        return listed
    from inference.fetch import Fetcher

    fetcher = Fetcher(Path(out_dir) / ".downloads", **dict(fetch_options or {}))
    fetched = {result.url: result for result in fetcher.fetch_all([i.url for i in remote if i.url], progress)}
    items: list[SourceItem] = []
    for item in listed.items:
        if item.path is not None:
            items.append(item)
            continue
        result = fetched[item.url or ""]
        if result.path is None:
            listed.failures.append(Skipped(item.name, result.reason))
        else:
            items.append(replace(item, path=result.path))
    return Ingested(
        items,
        listed.failures,
        fetched=sum(1 for r in fetched.values() if r.path is not None and not r.reused),
        reused=sum(1 for r in fetched.values() if r.reused),
        transient=[Skipped(url, r.reason) for url, r in fetched.items() if r.path is None and r.transient],
    )
