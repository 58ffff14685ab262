"""Tests for samstream.download: cache lookup, precedence and downloads.

Downloads are exercised against a small HTTP server on 127.0.0.1 started
here; nothing touches the internet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
import socket
import sys
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from samstream import download, weights

MODEL = "sam2.1_hiera_tiny"
FILENAME = "sam2.1_hiera_tiny.pt"
OFFICIAL_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt"
DATA = random.Random(1234).randbytes(200 * 1024)

_ENV_VARS = (
    "SAMSTREAM_CACHE",
    "XDG_CACHE_HOME",
    "SAMSTREAM_CHECKPOINT",
    "SAMSTREAM_DOWNLOAD_BASE_URL",
    "SAMSTREAM_DOWNLOAD_TIMEOUT",
    "SAMSTREAM_OFFLINE",
    "SAMSTREAM_USE_HF",
    "HF_HUB_OFFLINE",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for var in _ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SAMSTREAM_CACHE", str(tmp_path / "cache"))
    # never route the local test server through a proxy
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("SAMSTREAM_DOWNLOAD_TIMEOUT", "5")


# --------------------------------------------------------------------------
# a tiny HTTP server with Range support and a few ways to misbehave
# --------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *args):  # keep pytest output quiet
        pass

    def do_GET(self):
        srv = self.server
        range_header = self.headers.get("Range")
        srv.requests.append((self.path, range_header))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if range_header and srv.mode != "ignore_range":
            m = re.fullmatch(r"bytes=(\d+)-", range_header.strip())
            assert m, range_header
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.mode == "truncate":
            body = body[: len(body) // 2]  # announce everything, send half, hang up
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.mode = "normal"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/mirror"


@pytest.fixture
def server(monkeypatch):
    srv = _Server()
    srv.files["/mirror/092824/" + FILENAME] = DATA
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("SAMSTREAM_DOWNLOAD_BASE_URL", srv.base_url)
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cache_file() -> Path:
    return download.cache_dir() / FILENAME


def _part_file() -> Path:
    return download.cache_dir() / (FILENAME + ".part")


def test_unknown_model_name_in_resolve_checkpoint():
    with pytest.raises(ValueError, match="sam2.1_hiera_base_plus"):
        download.resolve_checkpoint("sam2.1_hiera_xl", download=False)


def test_download_url_override(monkeypatch):
    assert download.download_url(MODEL) == OFFICIAL_URL
    monkeypatch.setenv("SAMSTREAM_DOWNLOAD_BASE_URL", "http://127.0.0.1:9/m/")
    assert download.download_url(MODEL) == "http://127.0.0.1:9/m/092824/sam2.1_hiera_tiny.pt"
    assert download.download_url(weights.WEIGHTS["sam2_hiera_small"]) == (
        "http://127.0.0.1:9/m/072824/sam2_hiera_small.pt"
    )
    # the table itself keeps the official address
    assert weights.WEIGHTS[MODEL].url == OFFICIAL_URL


# --------------------------------------------------------------------------
# cache dir and local precedence
# --------------------------------------------------------------------------


def test_cache_dir_env_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("SAMSTREAM_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert download.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("SAMSTREAM_CACHE")
    assert download.cache_dir() == tmp_path / "xdg" / "samstream"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert download.cache_dir() == tmp_path / "home" / ".cache" / "samstream"
    assert download.cached_checkpoint_path("sam2.1_hiera_t") == (
        tmp_path / "home" / ".cache" / "samstream" / FILENAME
    )


def test_explicit_checkpoint_wins(monkeypatch, tmp_path):
    explicit = tmp_path / "mine.pt"
    explicit.write_bytes(b"x")
    from_env = tmp_path / "env.pt"
    from_env.write_bytes(b"y")
    monkeypatch.setenv("SAMSTREAM_CHECKPOINT", str(from_env))
    _cache_file().parent.mkdir(parents=True)
    _cache_file().write_bytes(b"z")
    assert download.resolve_checkpoint(MODEL, explicit) == explicit
    assert download.resolve_checkpoint(MODEL, str(explicit)) == explicit
    # an explicit file does not need an official name
    assert download.resolve_checkpoint("my-finetune", explicit) == explicit


def test_missing_explicit_checkpoint_raises(monkeypatch, tmp_path):
    _cache_file().parent.mkdir(parents=True)
    _cache_file().write_bytes(b"z")  # must not be used as a fallback
    missing = tmp_path / "nope" / "missing.pt"
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        download.resolve_checkpoint(MODEL, missing)


def test_env_checkpoint_beats_cache(monkeypatch, tmp_path):
    from_env = tmp_path / "env.pt"
    from_env.write_bytes(b"y")
    _cache_file().parent.mkdir(parents=True)
    _cache_file().write_bytes(b"z")
    monkeypatch.setenv("SAMSTREAM_CHECKPOINT", str(from_env))
    assert download.resolve_checkpoint(MODEL) == from_env
    monkeypatch.setenv("SAMSTREAM_CHECKPOINT", str(tmp_path / "gone.pt"))
    with pytest.raises(FileNotFoundError, match="SAMSTREAM_CHECKPOINT.*gone.pt"):
        download.resolve_checkpoint(MODEL)


def test_env_checkpoint_directory(monkeypatch, tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / FILENAME).write_bytes(b"w")
    monkeypatch.setenv("SAMSTREAM_CHECKPOINT", str(folder))
    assert download.resolve_checkpoint("sam2.1_hiera_t") == folder / FILENAME
    with pytest.raises(FileNotFoundError, match="sam2_hiera_large.pt"):
        download.resolve_checkpoint("sam2_hiera_large")


def test_cached_file_is_used_without_network(monkeypatch):
    monkeypatch.setenv("SAMSTREAM_DOWNLOAD_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    _cache_file().parent.mkdir(parents=True)
    _cache_file().write_bytes(b"cached")
    assert download.resolve_checkpoint("facebook/sam2.1-hiera-tiny", download=False) == _cache_file()
    assert download.resolve_checkpoint(MODEL) == _cache_file()


# --------------------------------------------------------------------------
# downloads
# --------------------------------------------------------------------------


def test_download_from_local_server(server):
    path = download.resolve_checkpoint("sam2.1_hiera_t", progress=True)
    assert path == _cache_file()
    assert path.read_bytes() == DATA
    assert not _part_file().exists()
    assert sorted(p.name for p in path.parent.iterdir()) == [FILENAME]
    assert server.requests == [("/mirror/092824/" + FILENAME, None)]
    # second call: served from the cache, no new request
    assert download.resolve_checkpoint(MODEL) == path
    assert len(server.requests) == 1


def test_resume_from_partial_file(server):
    _part_file().parent.mkdir(parents=True)
    _part_file().write_bytes(DATA[:70_000])
    path = download.resolve_checkpoint(MODEL, progress=False)
    assert path.read_bytes() == DATA
    assert server.requests == [("/mirror/092824/" + FILENAME, "bytes=70000-")]
    assert not _part_file().exists()


def test_restart_when_server_ignores_range(server):
    server.mode = "ignore_range"
    _part_file().parent.mkdir(parents=True)
    _part_file().write_bytes(b"\0" * 50_000)  # would corrupt the file if appended to
    path = download.resolve_checkpoint(MODEL, progress=False)
    assert path.read_bytes() == DATA
    assert server.requests[0][1] == "bytes=50000-"
    assert not _part_file().exists()


def test_complete_partial_file_answered_416(server):
    _part_file().parent.mkdir(parents=True)
    _part_file().write_bytes(DATA)
    path = download.resolve_checkpoint(MODEL, progress=False)
    assert path.read_bytes() == DATA
    assert server.requests == [("/mirror/092824/" + FILENAME, f"bytes={len(DATA)}-")]
    assert not _part_file().exists()


def test_truncated_transfer_is_detected_then_resumed(server):
    server.mode = "truncate"
    with pytest.raises(download.CheckpointNotAvailableError) as info:
        download.resolve_checkpoint(MODEL, progress=False)
    assert isinstance(info.value.__cause__, download.DownloadError)
    assert "incomplete" in str(info.value)
    assert not _cache_file().exists()
    kept = _part_file().read_bytes()
    assert 0 < len(kept) < len(DATA) and DATA.startswith(kept)
    # the next attempt continues where the previous one stopped
    server.mode = "normal"
    path = download.resolve_checkpoint(MODEL, progress=False)
    assert path.read_bytes() == DATA
    assert server.requests[-1][1] == f"bytes={len(kept)}-"
    assert not _part_file().exists()


def test_known_size_mismatch_is_rejected(server, monkeypatch):
    wrong = dataclasses.replace(weights.WEIGHTS[MODEL], size_bytes=len(DATA) - 1)
    monkeypatch.setitem(weights.WEIGHTS, MODEL, wrong)
    with pytest.raises(download.CheckpointNotAvailableError) as info:
        download.resolve_checkpoint(MODEL, progress=False)
    assert isinstance(info.value.__cause__, download.DownloadIntegrityError)
    assert str(len(DATA) - 1) in str(info.value)
    assert not _cache_file().exists()
    assert not _part_file().exists()


def test_sha256_checked(server, monkeypatch):
    bad = dataclasses.replace(weights.WEIGHTS[MODEL], size_bytes=len(DATA), sha256="0" * 64)
    monkeypatch.setitem(weights.WEIGHTS, MODEL, bad)
    with pytest.raises(download.CheckpointNotAvailableError) as info:
        download.resolve_checkpoint(MODEL, progress=False)
    assert isinstance(info.value.__cause__, download.DownloadIntegrityError)
    assert not _cache_file().exists() and not _part_file().exists()

    good = dataclasses.replace(bad, sha256=hashlib.sha256(DATA).hexdigest())
    monkeypatch.setitem(weights.WEIGHTS, MODEL, good)
    assert download.resolve_checkpoint(MODEL, progress=False).read_bytes() == DATA


def test_download_file_http_error(server, tmp_path):
    with pytest.raises(download.DownloadError, match="404"):
        download.download_file(server.base_url + "/missing.pt", tmp_path / "m.pt", progress=False)
    assert not (tmp_path / "m.pt").exists()


def _assert_manual_instructions(message: str) -> None:
    assert OFFICIAL_URL in message
    assert "facebook/sam2.1-hiera-tiny" in message
    assert FILENAME in message
    assert str(_cache_file()) in message
    assert "--checkpoint PATH" in message
    assert "SAMSTREAM_CHECKPOINT" in message


def test_offline_error_message(monkeypatch):
    port = _closed_port()
    monkeypatch.setenv("SAMSTREAM_DOWNLOAD_BASE_URL", f"http://127.0.0.1:{port}")
    start = time.monotonic()
    with pytest.raises(download.CheckpointNotAvailableError) as info:
        download.resolve_checkpoint("sam2.1_hiera_t", progress=False)
    assert time.monotonic() - start < 5
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    _assert_manual_instructions(message)
    assert f"http://127.0.0.1:{port}/092824/{FILENAME}" in message
    assert not _cache_file().exists() and not _part_file().exists()


def test_download_disabled_and_offline_mode(server, monkeypatch):
    with pytest.raises(download.CheckpointNotAvailableError) as info:
        download.resolve_checkpoint(MODEL, download=False)
    _assert_manual_instructions(str(info.value))
    monkeypatch.setenv("SAMSTREAM_OFFLINE", "1")
    with pytest.raises(download.CheckpointNotAvailableError, match="offline"):
        download.resolve_checkpoint(MODEL)
    assert server.requests == []


def test_connection_timeout_fails_fast(monkeypatch):
    # a listening socket that never answers
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        monkeypatch.setenv("SAMSTREAM_DOWNLOAD_BASE_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("SAMSTREAM_DOWNLOAD_TIMEOUT", "0.3")
        start = time.monotonic()
        with pytest.raises(download.CheckpointNotAvailableError) as info:
            download.resolve_checkpoint(MODEL, progress=False)
        assert time.monotonic() - start < 3
    _assert_manual_instructions(str(info.value))


def test_huggingface_hub_path(monkeypatch, tmp_path):
    calls = []
    target = tmp_path / "hf" / FILENAME

    def fake_download(repo_id, filename, **kwargs):
        calls.append((repo_id, filename))
        return str(target)

    fake = types.ModuleType("huggingface_hub")
    fake.hf_hub_download = fake_download
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    monkeypatch.setenv("SAMSTREAM_USE_HF", "1")
    assert download.resolve_checkpoint("sam2.1_hiera_t") == target
    assert calls == [("facebook/sam2.1-hiera-tiny", FILENAME)]

    def failing(repo_id, filename, **kwargs):
        raise OSError("no network")

    fake.hf_hub_download = failing
    with pytest.raises(download.CheckpointNotAvailableError, match="no network") as info:
        download.resolve_checkpoint(MODEL)
    _assert_manual_instructions(str(info.value))
