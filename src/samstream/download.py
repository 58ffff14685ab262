"""Finding and downloading the official checkpoints (the registry itself is :mod:`samstream.weights`).

The entry point is :func:`resolve_checkpoint`, which turns a model name (or
any of its aliases) into the path of a local ``.pt`` file.  It looks, in
order, at

1. an explicit ``checkpoint`` argument (for instance ``--checkpoint PATH``),
2. the ``SAMSTREAM_CHECKPOINT`` environment variable,
3. the samstream cache directory (see :func:`cache_dir`),

and only then downloads the file.  Downloads use nothing but the standard
library (``urllib``), resume from a ``<file>.part`` left behind by an
interrupted attempt, are checked against the announced and the known sizes
(and SHA-256 when known), and are moved into place atomically.

Environment variables
---------------------
``SAMSTREAM_CACHE``
    Cache directory (default ``$XDG_CACHE_HOME/samstream`` or
    ``~/.cache/samstream``).
``SAMSTREAM_CHECKPOINT``
    A checkpoint file to use instead of the cache (or a directory holding
    the official file names).
``SAMSTREAM_DOWNLOAD_BASE_URL``
    Replaces ``https://dl.fbaipublicfiles.com/segment_anything_2`` in the
    download URLs (mirrors, local servers).
``SAMSTREAM_DOWNLOAD_TIMEOUT``
    Socket timeout in seconds for downloads (default 30).
``SAMSTREAM_OFFLINE`` / ``HF_HUB_OFFLINE``
    When true, never touch the network.
``SAMSTREAM_USE_HF``
    When true and ``huggingface_hub`` is installed, fetch through
    ``hf_hub_download`` (and its cache) instead of the plain URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Iterator

from .bundled import bundled_model, bundled_weights
from .weights import OFFICIAL_BASE_URL, WeightsSource, weights_source

__all__ = [
    "DEFAULT_TIMEOUT",
    "CheckpointNotAvailableError",
    "DownloadError",
    "DownloadIntegrityError",
    "download_url",
    "cache_dir",
    "cached_checkpoint_path",
    "resolve_checkpoint",
    "download_file",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 20

ENV_CACHE = "SAMSTREAM_CACHE"
ENV_CHECKPOINT = "SAMSTREAM_CHECKPOINT"
ENV_BASE_URL = "SAMSTREAM_DOWNLOAD_BASE_URL"
ENV_TIMEOUT = "SAMSTREAM_DOWNLOAD_TIMEOUT"
ENV_OFFLINE = "SAMSTREAM_OFFLINE"
ENV_USE_HF = "SAMSTREAM_USE_HF"


def download_url(source: WeightsSource | str) -> str:
    """The URL a download will use, with ``SAMSTREAM_DOWNLOAD_BASE_URL`` applied."""
    src = source if isinstance(source, WeightsSource) else weights_source(source)
    base = os.environ.get(ENV_BASE_URL, "").strip()
    if base and src.url.startswith(OFFICIAL_BASE_URL + "/"):
        return base.rstrip("/") + src.url[len(OFFICIAL_BASE_URL):]
    return src.url


# --------------------------------------------------------------------------
# local lookup
# --------------------------------------------------------------------------


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _env_flag(name: str) -> bool:
    value = _env(name)
    return value is not None and value.lower() in {"1", "true", "yes", "on"}


def cache_dir() -> Path:
    """Directory holding downloaded checkpoints (not created here).

    ``$SAMSTREAM_CACHE``, else ``$XDG_CACHE_HOME/samstream``, else
    ``~/.cache/samstream``.
    """
    explicit = _env(ENV_CACHE)
    if explicit is not None:
        return Path(explicit).expanduser()
    xdg = _env("XDG_CACHE_HOME")
    if xdg is not None:
        return Path(xdg).expanduser() / "samstream"
    return Path.home() / ".cache" / "samstream"


def cached_checkpoint_path(name: str | os.PathLike[str]) -> Path:
    """Where the checkpoint for ``name`` lives (or will live) in the cache."""
    return cache_dir() / weights_source(name).filename


class CheckpointNotAvailableError(RuntimeError):
    """The checkpoint is not on disk and could not (or may not) be downloaded."""


class DownloadError(RuntimeError):
    """A download failed (network, HTTP status, incomplete transfer)."""


class DownloadIntegrityError(DownloadError):
    """A downloaded file does not have the expected size or SHA-256."""


def _local_file(path: str | os.PathLike[str], name: str, origin: str) -> Path:
    """Validate a user-provided checkpoint location.

    A directory is accepted too: it must hold the official file name of
    ``name``.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        candidate = p / weights_source(name).filename
        if candidate.is_file():
            return candidate
        raise FileNotFoundError(
            f"{origin} points to the directory {str(p)!r}, which has no "
            f"{weights_source(name).filename!r} in it"
        )
    if p.is_file():
        return p
    raise FileNotFoundError(f"{origin}: checkpoint file not found: {str(p)!r}")


def _unavailable(src: WeightsSource, dest: Path, reason: str) -> CheckpointNotAvailableError:
    tried = download_url(src)
    lines = [
        f"The checkpoint for model '{src.name}' is not available locally and "
        f"could not be downloaded: {reason}",
        "Fetch the file yourself, from either of:",
        f"  URL:          {src.url}",
        f"  Hugging Face: repo {src.hf_repo_id}, file {src.filename} "
        f"(huggingface-cli download {src.hf_repo_id} {src.filename})",
    ]
    if tried != src.url:
        lines.append(f"  (the download tried {tried}, set by {ENV_BASE_URL})")
    lines += [
        "and save it as:",
        f"  {dest}",
        f"or pass its location with --checkpoint PATH or the {ENV_CHECKPOINT} "
        "environment variable.",
        "(offline, the bundled model works without any download: --model samstream-synthetic)",
    ]
    return CheckpointNotAvailableError("\n".join(lines))


def _timeout() -> float:
    value = _env(ENV_TIMEOUT)
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        timeout = float(value)
    except ValueError:
        raise ValueError(f"{ENV_TIMEOUT} must be a number of seconds, got {value!r}") from None
    if timeout <= 0:
        raise ValueError(f"{ENV_TIMEOUT} must be positive, got {value!r}")
    return timeout


def resolve_checkpoint(
    name: str,
    checkpoint: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """Path of a local checkpoint file for model ``name``.

    Precedence: ``checkpoint`` (must exist, ``FileNotFoundError`` otherwise)
    → ``$SAMSTREAM_CHECKPOINT`` (same) → a bundled model's own file
    (:mod:`samstream.bundled`) → the file in :func:`cache_dir` →
    a download into the cache.  Raises :class:`CheckpointNotAvailableError`
    with manual instructions when the download is impossible (``download``
    false, offline mode, network or integrity failure) and ``ValueError``
    for unknown model names.  ``name`` is only checked when it is needed,
    so an explicit file may go with a custom name.
    """
    if checkpoint is not None:
        return _local_file(checkpoint, name, "checkpoint")
    env_path = _env(ENV_CHECKPOINT)
    if env_path is not None:
        return _local_file(env_path, name, ENV_CHECKPOINT)
    bundled = bundled_model(name)
    if bundled is not None:
        return bundled_weights(bundled)

    src = weights_source(name)
    dest = cache_dir() / src.filename
    if dest.is_file():
        if src.size_bytes is None or dest.stat().st_size == src.size_bytes:
            return dest
        logger.warning(
            "cached %s has %d bytes instead of %d; downloading it again",
            dest, dest.stat().st_size, src.size_bytes,
        )

    if not download:
        raise _unavailable(src, dest, "downloading is disabled (download=False)")
    for var in (ENV_OFFLINE, "HF_HUB_OFFLINE"):
        if _env_flag(var):
            raise _unavailable(src, dest, f"offline mode is on ({var} is set)")

    if _env_flag(ENV_USE_HF):
        try:
            from huggingface_hub import hf_hub_download
        except ImportError:
            warnings.warn(
                f"{ENV_USE_HF} is set but huggingface_hub is not installed; "
                "downloading from the plain URL instead",
                stacklevel=2,
            )
        else:
            try:
                return Path(hf_hub_download(repo_id=src.hf_repo_id, filename=src.filename))
            except Exception as exc:  # the hub raises many different types
                raise _unavailable(
                    src, dest, f"huggingface_hub failed: {type(exc).__name__}: {exc}"
                ) from exc

    url = download_url(src)
    try:
        return download_file(
            url,
            dest,
            expected_size=src.size_bytes,
            sha256=src.sha256,
            progress=progress,
            timeout=_timeout(),
        )
    except DownloadError as exc:
        raise _unavailable(src, dest, str(exc)) from exc


# --------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """Serialise downloads into one directory across processes (POSIX only)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # filesystems without flock support
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


_CONTENT_RANGE_RE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total length) from a ``Content-Range`` header."""
    if not value:
        return None, None
    m = _CONTENT_RANGE_RE.fullmatch(value.strip())
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(3)) if m.group(3) != "*" else None
    return start, total


def _content_length(headers) -> int | None:
    value = headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _RestartFromZero(Exception):
    """The partial file cannot be continued; throw it away and start over."""


def _progress_bar(total: int | None, initial: int, desc: str, enabled: bool):
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return tqdm(
                total=total,
                initial=initial,
                desc=desc,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                dynamic_ncols=True,
            )
    return contextlib.nullcontext(_NoBar())


class _NoBar:
    def update(self, n: int) -> None:
        pass


def _fetch(url: str, part: Path, offset: int, timeout: float, progress: bool, desc: str) -> int | None:
    """One request, writing into ``part`` from ``offset``; returns the total size if known."""
    headers = {"User-Agent": "samstream", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        with contextlib.closing(exc):
            if exc.code == 416 and offset:
                _, total = _parse_content_range(exc.headers.get("Content-Range"))
                if total is not None and total == offset:
                    return total  # the partial file is already complete
                raise _RestartFromZero() from None
            raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url}") from exc

    with response:
        status = response.status
        length = _content_length(response.headers)
        if status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != offset:
                raise _RestartFromZero()
            if total is None and length is not None:
                total = offset + length
            mode = "ab"
        elif status == 200:
            if offset:
                logger.info("server ignored the range request; restarting %s", url)
            offset = 0
            total = length
            mode = "wb"
        else:
            raise DownloadError(f"unexpected HTTP status {status} for {url}")

        with open(part, mode) as fh, _progress_bar(total, offset, desc, progress) as bar:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                fh.write(chunk)
                bar.update(len(chunk))
            fh.flush()
            os.fsync(fh.fileno())
    return total


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    expected_size: int | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download ``url`` to ``dest`` through ``<dest>.part``, resuming if possible.

    An existing ``.part`` is continued with an HTTP range request (appended
    on ``206``, restarted on ``200``).  The result is checked against the
    server's total length, ``expected_size`` and ``sha256``, then moved into
    place with ``os.replace``.  Raises :class:`DownloadError` (network or
    HTTP failures, incomplete transfers: the ``.part`` is kept so a rerun
    resumes) or :class:`DownloadIntegrityError` (wrong size or hash: the
    ``.part`` is deleted).
    """
    dest = Path(dest)
    part = _part_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _directory_lock(dest.parent):
        if expected_size is not None and part.exists() and part.stat().st_size > expected_size:
            part.unlink()

        logger.info("downloading %s to %s", url, dest)
        total: int | None = None
        for _attempt in range(2):
            offset = part.stat().st_size if part.exists() else 0
            try:
                total = _fetch(url, part, offset, timeout, progress, dest.name)
            except _RestartFromZero:
                part.unlink(missing_ok=True)
                continue
            except (OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise DownloadError(f"could not download {url}: {reason}") from exc
            break
        else:
            raise DownloadError(f"the server for {url} does not answer range requests consistently")

        size = part.stat().st_size if part.exists() else 0
        if total is not None and size != total:
            if size < total:
                raise DownloadError(
                    f"incomplete download of {url}: got {size} of {total} bytes "
                    f"(kept in {part}; run again to resume)"
                )
            part.unlink()
            raise DownloadIntegrityError(
                f"download of {url} has {size} bytes, more than the {total} announced"
            )
        if expected_size is not None and size != expected_size:
            if total is None and size < expected_size:
                raise DownloadError(
                    f"incomplete download of {url}: got {size} of {expected_size} bytes "
                    f"(kept in {part}; run again to resume)"
                )
            part.unlink()
            raise DownloadIntegrityError(
                f"download of {url} has {size} bytes, expected {expected_size}"
            )
        if sha256 is not None:
            actual = _sha256_of(part)
            if actual.lower() != sha256.lower():
                part.unlink()
                raise DownloadIntegrityError(
                    f"download of {url} has SHA-256 {actual}, expected {sha256}"
                )
        os.replace(part, dest)
    return dest
