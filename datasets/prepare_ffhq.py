"""``bench prepare ffhq``: download the FFHQ generator and the 40 CelebA-HQ classifiers
(``datasets.ffhq_assets``) into the cache, or check and record the copies already there.

Each file ends in one of three ways: downloaded (``core.download.fetch``: resumable, size and
digest checked, renamed into place when whole), found in place (a copy put there by hand or by
an earlier run, checked against the manifest, and recorded if it was not yet) or not in place.
Files that could not be brought are collected and reported together as one error line naming,
for each, its URL and the exact path where the user may put it by hand; the files that did come
are kept. Once a server did not answer at all, its other files are not tried.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from core.digest_record import DigestRecord, Recorded
from core.download import DownloadError, Expected, fetch, partial_path, url_host
from core.errors import BenchError
from core.hashing import file_sha256
from core.inputs import CACHE_ENV, env_origin, env_value
from datasets.ffhq_assets import (
    CLASSIFIERS,
    DEFAULT_GENERATOR,
    Asset,
    ffhq_folder,
    generator_asset,
    prepare_command,
)

ONLY = ("generator", "classifiers")


@dataclass(frozen=True)
class Planned:
    """One file to bring: the asset, the URL it is fetched from and its path in the cache."""

    asset: Asset
    url: str
    dest: Path


def check_base_url(base_url: str) -> str:
    """``base_url`` (``--base-url``) with a trailing slash, if it is an http(s) URL with a
    host; else a BenchError saying what was expected."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise BenchError(f"--base-url {base_url!r}: expected an http:// or https:// URL of a "
                         "folder holding the files under their own names (e.g. "
                         "https://mirror.example/ffhq/)")
    return base_url if base_url.endswith("/") else base_url + "/"


def plan_ffhq(generator: str = DEFAULT_GENERATOR, *, only: str | None = None,
              base_url: str | None = None, cache: str | Path | None = None) -> list[Planned]:
    """The files ``prepare_ffhq`` brings, in order (generator first, then classifiers 00-39):
    ``only`` picks ``generator`` or ``classifiers``; ``base_url`` replaces the host and folder
    of every URL (a mirror holding all files in one folder)."""
    if only is not None and only not in ONLY:
        raise BenchError(f"prepare ffhq: --only {only!r}: expected one of {', '.join(ONLY)}")
    assets = ([generator_asset(generator)] if only in (None, "generator") else []) + (
        list(CLASSIFIERS) if only in (None, "classifiers") else [])
    base = check_base_url(base_url) if base_url is not None else None
    folder = ffhq_folder(cache)
    return [Planned(asset, asset.url if base is None else base + asset.file,
                    folder / asset.file) for asset in assets]


def prepare_ffhq(generator: str = DEFAULT_GENERATOR, *, only: str | None = None,
                 base_url: str | None = None, dry_run: bool = False, progress: bool = False,
                 cache: str | Path | None = None, retries: int = 3,
                 timeout: float = 60.0) -> str:
    """Bring the FFHQ assets into the cache and return a one-line summary (with ``dry_run``,
    the plan: the cache folder and each file's state and URL, touching neither disk nor
    network). Files not brought are one BenchError line naming each URL and path."""
    plan = plan_ffhq(generator, only=only, base_url=base_url, cache=cache)
    folder = ffhq_folder(cache)
    record = DigestRecord(folder)
    if dry_run:
        return dry_run_text(plan, folder, record, cache_given=cache is not None)
    start = time.perf_counter()
    done: dict[str, int] = {}
    failed: list[DownloadError] = []
    unreachable: dict[str, str] = {}  # host -> why no answer came
    for item in plan:
        host = url_host(item.url)
        if host in unreachable:
            failed.append(DownloadError(item.url, item.dest, unreachable[host]))
            continue
        try:
            how = _bring(item, record, progress=progress, retries=retries, timeout=timeout)
        except DownloadError as err:
            failed.append(err)
            if not err.reachable:
                unreachable[host] = err.reason
            continue
        done[how] = done.get(how, 0) + 1
    if failed:
        raise BenchError(_failure_line(failed, len(plan), generator, only, base_url))
    counts = ", ".join(f"{n} {how}" for how, n in done.items())
    return (f"ffhq: {len(plan)} files in {folder} ({counts}; digests in {record.path}) "
            f"[{time.perf_counter() - start:.1f} s]")


def _bring(item: Planned, record: DigestRecord, *, progress: bool, retries: int,
           timeout: float) -> str:
    """Check (and record) the file in place, or download it; returns how it went."""
    known = record.get(item.asset.file)
    if item.asset.sha256 is not None:
        want = Expected(item.asset.sha256, known.size if known else None, "published")
    elif known is not None:
        want = Expected(known.sha256, known.size, f"recorded in {record.path}")
    else:
        want = Expected()
    if item.dest.exists():
        digest = _check_in_place(item, want)
        if known is None:
            record.add(item.asset.file, Recorded(digest, item.dest.stat().st_size, "in place"))
            return "found in place and recorded"
        return "verified"
    digest = fetch(item.url, item.dest, expected=want, progress=progress, retries=retries,
                   timeout=timeout)
    if known is None:
        record.add(item.asset.file, Recorded(digest, item.dest.stat().st_size, item.url))
    return "downloaded"


def _check_in_place(item: Planned, want: Expected) -> str:
    """The sha256 of the file already at ``item.dest`` if it is what ``want`` says; else a
    DownloadError (the file is left as it is: it may be the user's)."""
    dest = item.dest
    if not dest.is_file():
        raise DownloadError(item.url, dest, f"{dest} is a folder, not the file; refused")
    size = dest.stat().st_size
    if size == 0:
        raise DownloadError(item.url, dest, f"{dest} is an empty file; refused")
    if want.size is not None and size != want.size:
        raise DownloadError(item.url, dest, f"the file in place has {size:,} bytes, "
                            f"{want.origin} {want.size:,}; refused, left as it is")
    digest = file_sha256(dest)
    if want.sha256 is not None and digest != want.sha256:
        raise DownloadError(item.url, dest, f"the file in place has sha256 {digest}, "
                            f"{want.origin} {want.sha256}; refused, left as it is")
    return digest


def _failure_line(failed: list[DownloadError], planned: int, generator: str,
                  only: str | None, base_url: str | None) -> str:
    """One line: how many files are not in place, then per reason each URL -> path."""
    by_reason: dict[str, list[str]] = {}
    for err in failed:
        by_reason.setdefault(err.reason, []).append(f"{err.url} -> {err.dest}")
    groups = "; ".join(f"{reason}: {', '.join(items)}" for reason, items in by_reason.items())
    command = prepare_command(None if only == "classifiers" else generator)
    if only == "generator":
        command += " --only generator"
    if base_url is not None:
        command += f" --base-url {base_url}"
    return (f"prepare ffhq: {len(failed)} of {planned} files not in place; put each by hand "
            f"at the path shown (URL -> path), then rerun `{command}` to check and record "
            f"them: {groups}")


def dry_run_text(plan: list[Planned], folder: Path, record: DigestRecord, *,
                 cache_given: bool = False) -> str:
    """The cache folder (and what set it) and, per file, its state, name and URL; reads only
    sizes and the manifest."""
    if cache_given:
        origin = "given"
    elif env_value(CACHE_ENV) is not None:
        origin = f"from {env_origin(CACHE_ENV)}"
    else:
        origin = f"the default; set {env_origin(CACHE_ENV)} to move it"
    lines = [f"ffhq: cache folder {folder} ({origin}); digests recorded in {record.path}"]
    for item in plan:
        lines.append(f"  {_state(item, record):<24} {item.asset.file}  <- {item.url}")
    return "\n".join(lines)


def _state(item: Planned, record: DigestRecord) -> str:
    """A few words on where ``item`` stands in the cache, from sizes and the manifest only."""
    known = record.get(item.asset.file)
    if item.dest.is_file():
        if known is None:
            return "in place, to record"
        if item.dest.stat().st_size != known.size:
            return "in place, size differs"
        return "in place, recorded"
    part = partial_path(item.dest)
    if part.is_file():
        return f"partial, {part.stat().st_size:,} bytes"
    return "to download"
