"""Crash-safe file writes.

Each function writes the whole content to a temporary file in the destination
folder (named ``.<name>.<random>.tmp``) and then renames it over the target
with :func:`os.replace`, which is atomic on POSIX and Windows when both paths
are on the same file system.  A reader (or a run resumed after a crash) thus
sees either the previous file or the complete new one, never a half-written
file.  Pass ``fsync=True`` to also survive a power loss (slower: it flushes
the file and its folder to disk).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
from pathlib import Path
from typing import Any, Iterator, Sequence, Union

import numpy as np
from PIL import Image

__all__ = ["atomic_output", "atomic_write_bytes", "atomic_save_png", "atomic_write_json", "TEMP_SUFFIX"]

PathLike = Union[str, "os.PathLike[str]"]
TEMP_SUFFIX = ".tmp"


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open folders
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(descriptor)


def _temp_path_for(path: PathLike) -> tuple[Path, Path]:
    """(target, temp path next to it); creates the target's folder, refuses a folder as target."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write file '{target}': it is a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target, target.parent / f".{target.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"


@contextlib.contextmanager
def atomic_output(path: PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Give a temporary path to write ``path``'s content to, for writers that want a file name.

    On a normal exit the temporary file replaces ``path``; if the block raises, it is
    deleted and ``path`` is left as it was::

        with atomic_output("model.safetensors") as temp:
            safetensors.torch.save_file(state, temp)
    """
    target, temp = _temp_path_for(path)
    try:
        yield temp
        if not temp.is_file():
            raise FileNotFoundError(f"nothing was written to the temporary file for '{target}'")
        if fsync:
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    if fsync:
        _fsync_folder(target.parent)


def atomic_write_bytes(path: PathLike, data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically, creating missing parent folders (the new file gets
    the usual permissions, 0o666 minus the umask)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    with atomic_output(path, fsync=fsync) as temp:
        temp.write_bytes(data)


def _palette_bytes(palette: Sequence[int] | np.ndarray | bytes) -> bytes:
    """Flatten a palette given as bytes, a flat int sequence or an ``(N, 3)`` array."""
    if isinstance(palette, (bytes, bytearray)):
        flat = bytes(palette)
    else:
        values = np.asarray(palette)
        if values.ndim == 2 and values.shape[1] != 3:
            raise ValueError(f"palette array must have shape (N, 3), got {values.shape}")
        if values.size and (values.min() < 0 or values.max() > 255):
            raise ValueError("palette values must be in 0..255")
        flat = values.astype(np.uint8).reshape(-1).tobytes()
    if len(flat) == 0 or len(flat) % 3 != 0 or len(flat) > 768:
        raise ValueError(f"palette must hold 1..256 RGB triplets (3..768 values), got {len(flat)} values")
    return flat


def atomic_save_png(
    path: PathLike,
    array: np.ndarray,
    palette: Sequence[int] | np.ndarray | bytes | None = None,
    *,
    fsync: bool = False,
) -> None:
    """Encode ``array`` as PNG and write it atomically.

    Args:
        path: destination file.
        array: ``(H, W)`` bool (saved as 0 / 255, or 0 / 1 with a palette),
            ``(H, W)`` uint8 (grayscale, or palette indices when ``palette`` is
            given), ``(H, W, 3)`` uint8 RGB or ``(H, W, 4)`` uint8 RGBA.
        palette: for 2-D arrays, makes an indexed ('P' mode) PNG: bytes, a flat
            sequence ``[r0, g0, b0, r1, ...]`` or an ``(N, 3)`` array.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"array must be a numpy array, got {type(array).__name__}")
    if array.ndim == 2:
        if array.dtype == np.bool_:
            pixels = array.astype(np.uint8) * (1 if palette is not None else 255)
        elif array.dtype == np.uint8:
            pixels = array
        else:
            raise ValueError(f"a 2-D array must be bool or uint8, got {array.dtype}")
        contiguous = np.ascontiguousarray(pixels)
        if palette is None:
            image = Image.fromarray(contiguous)  # mode "L"
        else:
            image = Image.frombytes("P", (contiguous.shape[1], contiguous.shape[0]), contiguous.tobytes())
            image.putpalette(_palette_bytes(palette))
    elif array.ndim == 3 and array.shape[2] in (3, 4):
        if array.dtype != np.uint8:
            raise ValueError(f"an RGB / RGBA array must be uint8, got {array.dtype}")
        if palette is not None:
            raise ValueError("palette is only valid for 2-D (index) arrays")
        image = Image.fromarray(np.ascontiguousarray(array))
    else:
        raise ValueError(f"array must be (H, W), (H, W, 3) or (H, W, 4), got shape {array.shape}")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue(), fsync=fsync)


def atomic_write_json(path: PathLike, obj: Any, *, indent: int | None = None, fsync: bool = False) -> None:
    """Serialize ``obj`` as UTF-8 JSON and write it atomically.

    NaN / infinity are rejected (``ValueError``) because they are not valid JSON.
    """
    try:
        text = json.dumps(obj, indent=indent, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"cannot serialize JSON for '{path}': {error}") from None
    atomic_write_bytes(path, (text + "\n").encode("utf-8"), fsync=fsync)
