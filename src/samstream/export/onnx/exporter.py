"""Writing every graph one tracking step needs, the constants and ``manifest.json``."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from ...io.atomic import atomic_write_bytes, atomic_write_json
from ...modeling.sam2 import SAM2Model
from ...onnx.manifest import CONSTANTS_NAME, MANIFEST_NAME, GraphSpec, Manifest, TensorSpec
from .wrappers import (
    ImageEncoderGraph,
    MaskDownsampleGraph,
    MemoryAttentionGraph,
    MemoryEncoderGraph,
    PromptDecoderGraph,
)

MIN_OPSET = 17
DEFAULT_OPSET = 18
Quantization = Literal["int8"] | None


@dataclass(frozen=True)
class _Graph:
    """One graph to export: its module, example inputs, names and dynamic axes (by input)."""

    role: str
    module: nn.Module
    inputs: dict[str, torch.Tensor]
    outputs: tuple[str, ...]
    dynamic: dict[str, dict[int, str]]


def _example_graphs(model: SAM2Model) -> list[_Graph]:
    """The graphs of ``model`` with small example inputs (2 objects, 2 memories, 3 pointers)."""
    c = model.config
    s = c.image_size
    h = s // c.backbone_stride
    dim, mem_dim = model.hidden_dim, model.mem_dim
    b = 2
    high = c.use_high_res_features_in_sam
    feats = [torch.randn(b, dim // 8, 4 * h, 4 * h), torch.randn(b, dim // 4, 2 * h, 2 * h)] if high else []
    batch = {0: "batch"}
    graphs = [
        _Graph(
            "image_encoder",
            ImageEncoderGraph(model),
            {"image": torch.randn(b, 3, s, s)},
            (*(("high_res_0", "high_res_1") if high else ()), "image_embed", "image_pos"),
            {"image": batch},
        )
    ]
    if not high:  # the decoder graph keeps its signature; these inputs are then unused
        feats = [torch.zeros(b, 1, 1, 1), torch.zeros(b, 1, 1, 1)]
    dec_inputs = {
        "image_embed": torch.randn(b, dim, h, h),
        "high_res_0": feats[0],
        "high_res_1": feats[1],
        "point_coords": torch.rand(b, 3, 2) * s,
        "point_labels": torch.tensor([[1, 0, 1], [2, 3, 1]], dtype=torch.int64),
        "mask_input": torch.randn(b, 1, 4 * h, 4 * h),
        "has_mask_input": torch.tensor([1.0, 0.0]),
    }
    dec_dynamic = {k: dict(batch) for k in dec_inputs}
    dec_dynamic["point_coords"] = {0: "batch", 1: "points"}
    dec_dynamic["point_labels"] = {0: "batch", 1: "points"}
    dec_outputs = ("masks", "iou", "object_score_logits", "obj_ptr")
    for role, multi in (("decoder_single", False), ("decoder_multi", True)):
        graphs.append(_Graph(role, PromptDecoderGraph(model, multi), dict(dec_inputs), dec_outputs, dec_dynamic))
    if c.use_obj_ptrs_in_encoder:
        graphs.append(
            _Graph("mask_downsample", MaskDownsampleGraph(model), {"mask": torch.rand(b, 1, s, s).round()}, ("mask_prompt",), {"mask": batch})
        )
    frames = {0: "batch", 1: "frames"}
    mem_inputs = {
        "image_embed": torch.randn(b, dim, h, h),
        "image_pos": torch.randn(b, dim, h, h),
        "memory": torch.randn(b, 2, mem_dim, h, h),
        "memory_pos": torch.randn(b, 2, mem_dim, h, h),
        "memory_slots": torch.tensor([0, c.num_maskmem - 1], dtype=torch.int64),
    }
    mem_dynamic = {"image_embed": batch, "image_pos": batch, "memory": frames, "memory_pos": frames, "memory_slots": {0: "frames"}}
    if c.use_obj_ptrs_in_encoder:
        mem_inputs["obj_ptrs"] = torch.randn(b, 3, dim)
        mem_inputs["ptr_positions"] = torch.tensor([0.0, 0.1, 0.2])
        mem_dynamic["obj_ptrs"] = {0: "batch", 1: "pointers"}
        mem_dynamic["ptr_positions"] = {0: "pointers"}
    graphs.append(_Graph("memory_attention", MemoryAttentionGraph(model), mem_inputs, ("conditioned",), mem_dynamic))
    enc_inputs = {
        "image_embed": torch.randn(b, dim, h, h),
        "low_res_masks": torch.randn(b, 1, 4 * h, 4 * h),
        "object_score_logits": torch.tensor([[1.0], [-1.0]]),
        "is_mask_from_pts": torch.tensor([True, False]),
    }
    graphs.append(
        _Graph(
            "memory_encoder",
            MemoryEncoderGraph(model),
            enc_inputs,
            ("memory", "memory_pos"),
            {k: dict(batch) for k in enc_inputs},
        )
    )
    return graphs


def _export_one(graph: _Graph, path: Path, opset: int) -> None:
    """Export with the torch.export-based exporter, dynamic axes as named dimensions."""
    dims: dict[str, torch.export.Dim] = {}

    def dim(name: str):
        if name not in dims:
            dims[name] = torch.export.Dim(name, min=0 if name == "pointers" else 1, max=4096)
        return dims[name]

    names = list(graph.inputs)
    shapes = {n: {axis: dim(label) for axis, label in graph.dynamic.get(n, {}).items()} or None for n in names}
    # the exporter reports its progress on stdout and warns about its internals: keep both quiet
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph.module,
            tuple(graph.inputs.values()),
            input_names=names,
            output_names=list(graph.outputs),
            opset_version=opset,
            dynamo=True,
            dynamic_shapes=shapes,
            external_data=False,
            verbose=False,
        )
    buffer = io.BytesIO()
    program.save(buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _spec(path: Path) -> GraphSpec:
    """The signature as the exported file has it (dynamic axes by name)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    from onnx.helper import tensor_dtype_to_np_dtype

    def tensors(values) -> tuple[TensorSpec, ...]:
        out = []
        for v in values:
            t = v.type.tensor_type
            shape = tuple(d.dim_param if d.dim_param else int(d.dim_value) for d in t.shape.dim)
            out.append(TensorSpec(v.name, shape, str(tensor_dtype_to_np_dtype(t.elem_type))))
        return tuple(out)

    initializers = {i.name for i in proto.graph.initializer}
    inputs = [v for v in proto.graph.input if v.name not in initializers]
    return GraphSpec(file=path.name, inputs=tensors(inputs), outputs=tensors(proto.graph.output))


def _config_dict(model: SAM2Model) -> dict:
    def plain(value):
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(model.config))


def export_onnx(
    model: SAM2Model,
    out_dir: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    quantize: Quantization = None,
) -> Manifest:
    """Export everything image prediction and video tracking need into ``out_dir``.

    ``model``: built with ``accel=None`` and ``for_video=True`` (the plain modules; a model with
    CPU fast paths swapped in is refused). ``opset`` >= 17. ``quantize="int8"``: dynamic int8
    quantization of the weights (onnxruntime's quantizer).
    Writes one ``.onnx`` per graph, ``constants.npz`` and, last, ``manifest.json``.
    """
    if not isinstance(model, SAM2Model):
        raise TypeError(f"model must be a SAM2Model, got {type(model).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset must be an int >= {MIN_OPSET}, got {opset!r}")
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    _refuse_swapped_modules(model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    graphs: dict[str, GraphSpec] = {}
    with torch.no_grad():
        torch.manual_seed(0)
        for graph in _example_graphs(model):
            path = out / f"{graph.role}.onnx"
            _export_one(graph, path, opset)
            if quantize == "int8":
                from .quantize import quantize_int8

                quantize_int8(path)
            graphs[graph.role] = _spec(path)
    constants = {"no_mem_embed": model.no_mem_embed.detach().reshape(-1).float().numpy()}
    if hasattr(model, "no_obj_ptr"):
        constants["no_obj_ptr"] = model.no_obj_ptr.detach().reshape(-1).float().numpy()
    buffer = io.BytesIO()
    np.savez(buffer, **constants)
    atomic_write_bytes(out / CONSTANTS_NAME, buffer.getvalue())
    from ... import __version__

    manifest = Manifest(
        opset=opset,
        config=_config_dict(model),
        graphs=graphs,
        constants={k: tuple(v.shape) for k, v in constants.items()},
        quantization=quantize,
        samstream_version=__version__,
        exporter=f"torch {torch.__version__} (torch.onnx.export, dynamo)",
    )
    atomic_write_json(out / MANIFEST_NAME, manifest.to_json(), indent=1)
    return manifest


def _refuse_swapped_modules(model: SAM2Model) -> None:
    """The CPU fast paths replace modules with kernels a graph cannot hold."""
    swapped = {type(m).__module__ for m in model.modules() if type(m).__module__.startswith("samstream.accel")}
    if swapped:
        raise ValueError("model has CPU fast paths swapped in: build it with accel=None to export it")
