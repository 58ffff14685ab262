"""Tiny Grounding DINO and OWLv2 detectors with random weights, and their tokenizer files,
written by the tests (no hub); plus a fake proposer whose boxes are known.

Each folder is what ``save_pretrained`` writes, so it loads like a downloaded model:
``--detector FOLDER``, ``make_proposer(FOLDER)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

#: the words the tiny tokenizers know (the test phrases are made of them)
WORDS = ("cat", "dog", "person", "car", "red", "a")


def write_tiny_grounding_dino(folder: Path, *, seed: int = 0) -> Path:
    """A Grounding DINO with a 1-block Swin, a 1-layer BERT (WordPiece vocab of :data:`WORDS`), 10 queries."""
    import torch
    from transformers import (
        BertConfig,
        BertTokenizerFast,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True, model_max_length=32)
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}), tokenizer=tokenizer
    )
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(
            image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=2, out_indices=[2, 3, 4]
        ),
        text_config=BertConfig(
            vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, max_position_embeddings=64
        ),
        num_queries=10,
        encoder_layers=1,
        decoder_layers=2,  # the smallest number whose box heads can be tied
        encoder_ffn_dim=16,
        decoder_ffn_dim=16,
        d_model=32,  # GroupNorm(32, d_model)
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        max_text_len=32,
        encoder_n_points=1,
        decoder_n_points=1,
    )
    torch.manual_seed(seed)
    GroundingDinoForObjectDetection(config).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "vocab.txt").unlink()  # the tokenizer.json written above holds it
    return folder


def write_tiny_owlv2(folder: Path, *, seed: int = 0) -> Path:
    """An OWLv2 with 1-layer text and vision towers at 64 px (CLIP BPE vocab and merges of :data:`WORDS`)."""
    import torch
    from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    folder.mkdir(parents=True, exist_ok=True)
    letters = sorted(set("".join(WORDS)) | {"."})
    vocab: dict[str, int] = {}
    for piece in [*letters, *(c + "</w>" for c in letters)]:
        vocab[piece] = len(vocab)
    merges = []
    for word in WORDS:  # merge each word left to right into one token
        left = word[0]
        for i, c in enumerate(word[1:], start=1):
            right = c + ("</w>" if i == len(word) - 1 else "")
            merges.append(f"{left} {right}")
            left = left + right
            vocab.setdefault(left, len(vocab))
    merges = list(dict.fromkeys(merges))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), model_max_length=16)
    processor = Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}), tokenizer=tokenizer)
    end = vocab["<|endoftext|>"]
    config = Owlv2Config(
        text_config=dict(
            vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            max_position_embeddings=16, bos_token_id=vocab["<|startoftext|>"], eos_token_id=end, pad_token_id=end,
        ),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=64, patch_size=16),
        projection_dim=16,
    )
    torch.manual_seed(seed)
    Owlv2ForObjectDetection(config).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


class FakeProposer:
    """Returns given detections: ``boxes_per_call[i]`` (list of (x0, y0, x1, y1, label, score))
    on the i-th call (the last entry again after that); records the phrases it was asked for.
    ``with_masks``: each detection also carries its filled box as its mask (so masks are known)."""

    name = "fake"

    def __init__(self, boxes_per_call: Sequence[Sequence[tuple]], *, with_masks: bool = False):
        self.boxes_per_call = [list(b) for b in boxes_per_call]
        self.calls: list[tuple[str, ...]] = []
        self.with_masks = with_masks

    def propose(self, image: np.ndarray, phrases: tuple[str, ...]):
        from samstream.detect import Detections

        rows = self.boxes_per_call[min(len(self.calls), len(self.boxes_per_call) - 1)]
        self.calls.append(phrases)
        if not rows:
            return Detections.empty()
        masks = None
        if self.with_masks:
            masks = np.zeros((len(rows),) + image.shape[:2], dtype=bool)
            for mask, (x0, y0, x1, y1, *_) in zip(masks, rows):
                mask[int(y0) : int(y1), int(x0) : int(x1)] = True
        return Detections(
            np.array([r[:4] for r in rows], dtype=np.float64), np.array([r[5] for r in rows]), tuple(r[4] for r in rows), masks
        )
