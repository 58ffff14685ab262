"""Keys and values of past memories, projected once per memory frame and kept across frames.

Every tracked frame attends to the same recent memories again (each memory is attended to by
up to ``num_maskmem`` later frames), and each memory-attention layer projects them to keys and
values. The reference redoes those projections (and the rotary encoding of the keys) on every
frame; samstream keeps them. The key of a memory token is

    rope(W_k (memory + spatial_pos + tpos[slot]) + b_k)
      = rope(W_k (memory + spatial_pos) + b_k) + rope(W_k tpos[slot])

(the rotary encoding is linear in its input), so the first term is kept per memory and layer,
and only the small second one, which depends on how old the memory is now, is computed per
frame. Values ``W_v memory + b_v`` are kept as they are.

The cache belongs to a video session (:class:`MemoryProjectionCache`); entries are found by
the identity of each object's stored memory tensor, so a memory that is replaced or freed is
never matched again, and an entry not used for two frames is dropped: the cache holds at most
the memories of the current memory window, whatever the length of the video.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch

from .attention import RoPEAttention

# entries unused for more frames than this are dropped (the current and the previous frame stay)
_KEEP_FRAMES = 1
# reused key / value buffers kept: a pair for each of two batch sizes (objects in groups)
MAX_WORKSPACES = 4


@dataclass
class _Entry:
    ref: weakref.ref  # the stored memory tensor the projections were made from
    token: tuple  # what the projections depend on besides the memory itself
    keys: list[torch.Tensor]  # per layer: rotated keys without the temporal term [1, nH, hw, c]
    values: list[torch.Tensor]  # per layer: values [1, nH, hw, c]
    last_used: int


class MemoryProjectionCache:
    """Per-memory, per-layer projected keys and values of one video session."""

    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        self._workspace: dict[str, torch.Tensor] = {}
        self._tick = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def advance(self) -> None:
        """Start a new frame: drop the entries no frame has used lately."""
        self._tick += 1
        old = [key for key, e in self._entries.items() if e.last_used < self._tick - _KEEP_FRAMES or e.ref() is None]
        for key in old:
            del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()
        self._workspace.clear()

    def workspace(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """A buffer kept between frames (a fresh large allocation each frame costs more in page
        faults than filling it): the same tensor while shape, dtype and device stay. At most
        ``MAX_WORKSPACES`` names are kept (the least recently made goes first)."""
        buf = self._workspace.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype or buf.device != device:
            self._workspace.pop(name, None)
            while len(self._workspace) >= MAX_WORKSPACES:
                del self._workspace[next(iter(self._workspace))]
            buf = torch.empty(shape, dtype=dtype, device=device)
            self._workspace[name] = buf
        return buf

    def lookup(self, row: torch.Tensor, token: tuple) -> _Entry | None:
        entry = self._entries.get(id(row))
        if entry is None or entry.ref() is not row or entry.token != token:
            self.misses += 1
            return None
        entry.last_used = self._tick
        self.hits += 1
        return entry

    def store(self, row: torch.Tensor, token: tuple, keys: list[torch.Tensor], values: list[torch.Tensor]) -> _Entry:
        entry = _Entry(weakref.ref(row), token, keys, values, self._tick)
        self._entries[id(row)] = entry
        return entry


@dataclass(frozen=True)
class CachedMemoryFrame:
    """One memory frame for :func:`project_memories`: the per-object stored memories ``rows``
    ([1, C_mem, h, w] each; batched objects in order), the spatial position encoding ``pos``
    ([1 or B, C_mem, h, w]) and the temporal encoding ``tpos`` [C_mem] of its slot."""

    rows: tuple[torch.Tensor, ...]
    pos: torch.Tensor
    tpos: torch.Tensor


def _version(t: torch.Tensor) -> int:
    """The in-place version counter of t; inference tensors have none (-1)."""
    try:
        return t._version
    except RuntimeError:
        return -1


def _compute_dtype(device: torch.device) -> torch.dtype:
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return torch.float32


def project_memories(
    cache: MemoryProjectionCache,
    attns: list[RoPEAttention],
    pos_at_keys: list[bool],
    frames: list[CachedMemoryFrame],
    pointers: torch.Tensor | None,
    pointer_pos: torch.Tensor | None,
    num_queries: int,
) -> "MemoryKV":
    """Cross-attention keys and values of every layer for a batch of objects.

    attns: each layer's cross-attention; pos_at_keys: whether that layer adds the position
    encoding to its keys. pointers / pointer_pos: object-pointer tokens [B, P, C_mem] (not
    rotated) or None. Every memory frame has ``num_queries`` tokens (the current frame's grid).
    Missing projections are computed now (all layers) and kept; the result gives per layer
    (keys, values), [B, nH, M, c] each, M = frames x hw + P, in the order the plain path
    concatenates them (frames in order, then pointers).
    """
    b = len(frames[0].rows) if frames else pointers.shape[0]
    hw = num_queries
    device = (frames[0].pos if frames else pointers).device
    dtype = _compute_dtype(device)
    entries: list[list[_Entry]] = []
    for frame in frames:
        token = (
            dtype,
            device,
            tuple(frame.pos.shape[-2:]),  # the session's one position encoding, by its size
            tuple((id(a), _version(a.k_proj.weight), _version(a.v_proj.weight)) for a in attns),
            tuple(pos_at_keys),
        )
        found: list[_Entry | None] = [cache.lookup(row, token + (_version(row),)) for row in frame.rows]
        missing = [i for i, e in enumerate(found) if e is None]
        if missing:
            mem = torch.cat([frame.rows[i] for i in missing], dim=0).to(device).float()  # [m, C_mem, h, w]
            mem = mem.flatten(2).transpose(1, 2)  # [m, hw, C_mem]
            pos = frame.pos[:1].flatten(2).transpose(1, 2).float()  # [1, hw, C_mem]
            keys_by_layer, values_by_layer = [], []
            for attn, with_pos in zip(attns, pos_at_keys):
                k = attn.project_k(mem + pos if with_pos else mem)  # [m, nH, hw, c]
                keys_by_layer.append(attn.rotate(k, hw))
                values_by_layer.append(attn.project_v(mem))
            for j, i in enumerate(missing):
                row = frame.rows[i]
                found[i] = cache.store(
                    row,
                    token + (_version(row),),
                    [k[j : j + 1] for k in keys_by_layer],
                    [v[j : j + 1] for v in values_by_layer],
                )
        entries.append(found)  # type: ignore[arg-type]

    return MemoryKV(cache, attns, pos_at_keys, frames, entries, pointers, pointer_pos, hw, b, dtype, device)


class MemoryKV:
    """The memory's keys and values for each memory-attention layer, assembled when the layer
    asks (``kv[layer] -> (keys, values)``, [B, nH, M, c] each) into two buffers the session's
    cache keeps and reuses: valid until the next layer or call asks."""

    def __init__(
        self,
        cache: MemoryProjectionCache,
        attns: list[RoPEAttention],
        pos_at_keys: list[bool],
        frames: list[CachedMemoryFrame],
        entries: list[list[_Entry]],
        pointers: torch.Tensor | None,
        pointer_pos: torch.Tensor | None,
        hw: int,
        batch: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        self.cache, self.attns, self.pos_at_keys = cache, attns, pos_at_keys
        self.frames, self.entries = frames, entries
        self.pointers, self.pointer_pos = pointers, pointer_pos
        self.hw, self.batch, self.dtype, self.device = hw, batch, dtype, device

    def __len__(self) -> int:
        return len(self.attns)

    def rows(self, start: int, stop: int) -> "MemoryKV":
        """The same memory for objects ``start:stop`` of the batch only (assembled into the
        same reused buffers when the layer asks)."""
        return MemoryKV(
            self.cache,
            self.attns,
            self.pos_at_keys,
            self.frames,
            [found[start:stop] for found in self.entries],
            None if self.pointers is None else self.pointers[start:stop],
            None if self.pointer_pos is None else self.pointer_pos[start:stop],
            self.hw,
            len(range(start, min(stop, self.batch))),
            self.dtype,
            self.device,
        )

    def __getitem__(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        attn, with_pos = self.attns[layer], self.pos_at_keys[layer]
        hw, frames, device = self.hw, self.frames, self.device
        first = self.entries[0][0] if self.entries else None
        kd = first.keys[layer].dtype if first is not None else self.dtype
        num_ptr = 0 if self.pointers is None else self.pointers.shape[1]
        shape = (self.batch, attn.num_heads, len(frames) * hw + num_ptr, attn.internal_dim // attn.num_heads)
        # one pair of buffers per batch size (objects may come in groups of two sizes)
        keys = self.cache.workspace(f"keys{self.batch}", shape, kd, device)
        values = self.cache.workspace(f"values{self.batch}", shape, kd, device)
        for f, (frame, found) in enumerate(zip(frames, self.entries)):
            seg = slice(f * hw, (f + 1) * hw)
            if with_pos:
                # the temporal term: W_k tpos, the same for every token, then rotated per position
                shift = torch.nn.functional.linear(frame.tpos.float().to(device), attn.k_proj.weight)  # [C]
                shift = attn.rotate(attn._heads(shift.expand(1, hw, -1)), hw).to(kd)  # [1, nH, hw, c]
                for i, e in enumerate(found):
                    torch.add(e.keys[layer], shift, out=keys[i : i + 1, :, seg])
            else:
                for i, e in enumerate(found):
                    keys[i : i + 1, :, seg].copy_(e.keys[layer])
            for i, e in enumerate(found):
                values[i : i + 1, :, seg].copy_(e.values[layer])
        if num_ptr:
            ptrs = self.pointers.float()
            ptr_in = ptrs + self.pointer_pos.float() if with_pos else ptrs
            keys[:, :, len(frames) * hw :] = attn.project_k(ptr_in)
            values[:, :, len(frames) * hw :] = attn.project_v(ptrs)
        return keys, values
