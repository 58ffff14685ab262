"""Object proposers: phrase normalisation, the Detections type, Grounding DINO and OWLv2 built
from tiny random-weight folders (their outputs against transformers' own post-processing),
hub / folder loading and its errors, the registry, the automatic proposer, TextSegmenter."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny_detectors import FakeProposer

from samstream.detect import Detections, detector_names, make_proposer, normalize_phrases, register_detector
from samstream.detect.grounding_dino import GroundingDinoProposer, grounding_dino_prompt, match_phrase
from samstream.detect.hub import DetectorLoadError, DetectorNotAvailableError, load_detector
from samstream.detect.owlv2 import Owlv2Proposer
from samstream.detect.registry import DETECTORS, DetectorRequest

IMAGE = (np.random.default_rng(0).random((48, 80, 3)) * 255).astype(np.uint8)  # not square: OWLv2 pads it


def test_phrases_are_normalised():
    assert normalize_phrases("Cat.  a  DOG . cat. .") == ("cat", "a dog")
    assert normalize_phrases(["Red car", "person. Cat"]) == ("red car", "person", "cat")
    with pytest.raises(ValueError, match="--text"):
        normalize_phrases(" . ", name="--text")
    assert grounding_dino_prompt(("cat", "red car")) == "cat. red car."


def test_detections_are_checked_and_selected():
    d = Detections(np.array([[0, 0, 2, 2], [1, 1, 3, 3], [2, 2, 5, 5]]), np.array([0.2, 0.9, 0.5]), ("a", "b", "c"))
    assert len(d) == 3 and d.boxes.dtype == np.float64
    assert d.sorted().labels == ("b", "c", "a")
    assert d.select(np.array([False, True, True])).labels == ("b", "c")
    assert len(Detections.empty()) == 0
    with pytest.raises(ValueError, match="as many scores and labels"):
        Detections(np.zeros((2, 4)), np.zeros(1), ("a", "b"))
    with pytest.raises(ValueError, match="masks must be bool"):
        Detections(np.zeros((1, 4)), np.zeros(1), ("a",), np.zeros((2, 4, 4), bool))


def test_decoded_tokens_name_a_phrase():
    phrases = ("cat", "red car", "person")
    assert match_phrase("red car", phrases) == "red car"
    assert match_phrase("car", phrases) == "red car"  # part of a phrase
    assert match_phrase("cat red car", phrases) == "red car"  # words of two phrases: the one sharing most
    assert match_phrase("cat person", phrases) == "cat"  # a tie: the earlier phrase
    assert match_phrase("[SEP] .", phrases, ("[SEP]", "[CLS]")) is None  # nothing but special tokens and punctuation
    assert match_phrase("[CLS] red [SEP]", phrases, ("[SEP]", "[CLS]")) == "red car"
    assert match_phrase("dog", phrases) == "dog"  # no phrase shares a word: the decoded word itself


def _raw_grounding_dino(proposer, phrases, threshold, text_threshold):
    inputs = proposer.processor(images=IMAGE, text=grounding_dino_prompt(phrases), return_tensors="pt")
    with torch.no_grad():
        outputs = proposer.model(**inputs)
    return proposer.processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=threshold, text_threshold=text_threshold, target_sizes=[IMAGE.shape[:2]]
    )[0]


def test_grounding_dino_from_a_folder(tiny_grounding_dino_dir):
    phrases = ("cat", "red car")
    proposer = make_proposer(tiny_grounding_dino_dir, DetectorRequest(threshold=0.0, text_threshold=0.0))
    assert isinstance(proposer, GroundingDinoProposer) and proposer.source == str(tiny_grounding_dino_dir)
    assert (proposer.threshold, proposer.text_threshold) == (0.0, 0.0)
    found = proposer.propose(IMAGE, phrases)
    raw = _raw_grounding_dino(proposer, phrases, 0.0, 0.0)
    assert len(found) == len(raw["scores"]) == 10  # every query kept at threshold 0 (all labels name a phrase)
    order = np.argsort(-raw["scores"].numpy(), kind="stable")
    np.testing.assert_allclose(found.scores, raw["scores"].numpy()[order], rtol=0, atol=1e-6)
    expected = raw["boxes"].numpy()[order].clip(0, [80, 48, 80, 48])
    np.testing.assert_allclose(found.boxes, expected, rtol=0, atol=1e-4)
    special = proposer.processor.tokenizer.all_special_tokens
    assert found.labels == tuple(match_phrase(raw["text_labels"][i], phrases, special) for i in order)
    assert set(found.labels) <= set(phrases)
    assert np.all(np.diff(found.scores) <= 0)
    # the defaults are the issue's: threshold 0.35, text_threshold 0.25; a threshold of 1 keeps nothing
    default = make_proposer(tiny_grounding_dino_dir)
    assert (default.threshold, default.text_threshold) == (0.35, 0.25)
    assert len(make_proposer(tiny_grounding_dino_dir, DetectorRequest(threshold=1.0)).propose(IMAGE, phrases)) == 0


def test_owlv2_boxes_are_scaled_to_the_padded_square(tiny_owlv2_dir):
    from transformers.image_transforms import center_to_corners_format

    phrases = ("cat", "red car")
    proposer = make_proposer(tiny_owlv2_dir, DetectorRequest(threshold=0.0))
    assert isinstance(proposer, Owlv2Proposer) and proposer.pads_to_square
    proposer.nms_iou = 1.0  # keep every box to compare them all
    found = proposer.propose(IMAGE, phrases)
    inputs = proposer.processor(text=[list(phrases)], images=IMAGE, return_tensors="pt")
    with torch.no_grad():
        outputs = proposer.model(**inputs)
    logits = outputs.logits[0]  # [patches, queries]
    scores, classes = torch.sigmoid(logits.max(-1).values), logits.argmax(-1)
    boxes = (center_to_corners_format(outputs.pred_boxes[0]) * 80).numpy()  # the padded square is 80 x 80
    boxes = boxes.clip(0, [80, 48, 80, 48])
    visible = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]) & (scores.numpy() > 0)
    order = np.argsort(-scores.numpy()[visible], kind="stable")
    np.testing.assert_allclose(found.boxes, boxes[visible][order], rtol=0, atol=1e-3)
    assert found.labels == tuple(phrases[int(c)] for c in classes.numpy()[visible][order])
    assert np.all(found.boxes[:, 3] <= 48)  # nothing left in the padding below the image


def test_owlv2_nms_keeps_one_box_per_overlapping_group(tiny_owlv2_dir):
    from torchvision.ops import box_iou

    proposer = make_proposer(tiny_owlv2_dir, DetectorRequest(threshold=0.0))
    found = proposer.propose(IMAGE, ("cat", "dog"))
    assert len(found) >= 1
    for label in set(found.labels):
        same = torch.as_tensor(found.boxes[[i for i, l in enumerate(found.labels) if l == label]])
        iou = box_iou(same, same) - torch.eye(len(same))
        assert len(same) == 1 or float(iou.max()) <= proposer.nms_iou + 1e-6


def test_offline_hub_name_not_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DetectorNotAvailableError) as info:
        load_detector("IDEA-Research/grounding-dino-tiny", cache_dir=tmp_path / "hub")
    message = str(info.value)
    assert "IDEA-Research/grounding-dino-tiny" in message and "HF_HUB_OFFLINE" in message
    assert str(tmp_path / "hub" / "models--IDEA-Research--grounding-dino-tiny") in message
    with pytest.raises(DetectorNotAvailableError, match="owlv2-base-patch16-ensemble"):
        make_proposer("owlv2", DetectorRequest(cache_dir=tmp_path / "hub"))


def test_a_hub_name_loads_from_the_cache_offline(tmp_path, monkeypatch, tiny_owlv2_dir):
    """A model in the hub cache's layout loads by name with HF_HUB_OFFLINE set."""
    snapshot = tmp_path / "hub" / "models--someone--tiny-owl" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for f in tiny_owlv2_dir.iterdir():
        (snapshot / f.name).write_bytes(f.read_bytes())
    (tmp_path / "hub" / "models--someone--tiny-owl" / "refs").mkdir()
    (tmp_path / "hub" / "models--someone--tiny-owl" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    proposer = make_proposer("someone/tiny-owl", DetectorRequest(cache_dir=tmp_path / "hub", threshold=0.0))
    assert isinstance(proposer, Owlv2Proposer) and proposer.source == "someone/tiny-owl"


def test_folders_that_are_not_detectors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DetectorLoadError, match="config.json"):
        load_detector(empty)
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(DetectorLoadError, match="'bert'"):
        make_proposer(other)


def test_registry_names_and_registering(tmp_path):
    assert {"grounding-dino", "grounding-dino-base", "owlv2", "owlv2-large", "automatic"} <= set(detector_names())
    assert DETECTORS["grounding-dino"].model == "IDEA-Research/grounding-dino-tiny"
    fake = FakeProposer([[]])
    register_detector("fake-for-test", lambda request: fake)
    try:
        assert make_proposer("fake-for-test") is fake
    finally:
        del DETECTORS["fake-for-test"]
    with pytest.raises(ValueError, match="plain word"):
        register_detector("a/b", lambda request: fake)
    with pytest.raises(ValueError, match="sam_model"):
        make_proposer("automatic")


def test_automatic_proposer_gives_masks_and_their_boxes(tiny_model):
    from samstream.detect.automatic import AutomaticMaskProposer
    from samstream.image.automatic import AutomaticMaskConfig, AutomaticMaskGenerator
    from tiny import sample_image

    image = sample_image("coffee")[::4, ::4].copy()
    generator = AutomaticMaskGenerator(tiny_model, AutomaticMaskConfig(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0))
    found = AutomaticMaskProposer(generator).propose(image, ("ignored",))
    assert len(found) > 0 and found.masks is not None and len(found.masks) == len(found) and set(found.labels) == {"object"}
    request = DetectorRequest(sam_model=tiny_model, automatic_config=generator.config)
    by_name = make_proposer("automatic", request).propose(image)
    np.testing.assert_array_equal(by_name.masks, found.masks)
    nothing = AutomaticMaskGenerator(tiny_model, AutomaticMaskConfig(points_per_side=2, pred_iou_thresh=1.0))
    empty = AutomaticMaskProposer(nothing).propose(image)
    assert len(empty) == 0 and empty.masks.shape == (0,) + image.shape[:2]
    for box, mask in zip(found.boxes, found.masks):
        ys, xs = np.nonzero(mask)
        np.testing.assert_allclose(box, [xs.min(), ys.min(), xs.max(), ys.max()], atol=1.0)
    assert np.all(np.diff(found.scores) <= 0)


def test_text_segmenter_turns_boxes_into_labelled_masks(tiny_model):
    from samstream.image.predictor import ImagePredictor
    from samstream.image.text import TextSegmenter
    from tiny import sample_image

    image = sample_image("coffee")
    rows = [(100, 50, 300, 250, "cup", 0.5), (350, 100, 500, 300, "spoon", 0.8)]
    proposer = FakeProposer([rows])
    predictor = ImagePredictor(tiny_model)
    objects = TextSegmenter(predictor, proposer).segment(image, "Cup. Spoon.")
    assert proposer.calls == [("cup", "spoon")]
    assert [(o.label, o.score) for o in objects] == [("spoon", 0.8), ("cup", 0.5)]  # best first
    predictor.set_image(image)
    for o, row in zip(objects, rows[::-1]):
        direct = predictor.predict(box=np.array(row[:4], float), multimask_output=False)
        np.testing.assert_array_equal(o.mask, direct.masks[0])
        assert o.mask_score == pytest.approx(float(direct.scores[0]), abs=1e-5)
        np.testing.assert_array_equal(o.box, row[:4])
    one = TextSegmenter(predictor, FakeProposer([rows]), max_objects=1).segment(image, "cup")
    assert [o.label for o in one] == ["spoon"]
    assert TextSegmenter(predictor, FakeProposer([[]])).segment(image, "cup") == []
    given = TextSegmenter(predictor, FakeProposer([rows], with_masks=True)).segment(image, "cup")
    assert given[0].mask[100:300, 350:500].all() and given[0].mask.sum() == 150 * 200  # the proposer's own mask
    with pytest.raises(TypeError, match="proposer"):
        TextSegmenter(predictor, object())


def test_text_segmenter_on_features_already_computed(tiny_model):
    """Given the image's features (a video frame's), the masks are those of encoding it again."""
    from samstream.image.predictor import ImagePredictor
    from samstream.image.text import TextSegmenter
    from samstream.image.transforms import preprocess
    from tiny import sample_image

    image = sample_image("coffee")
    with torch.inference_mode():
        features = tiny_model.encode_images(preprocess(image, tiny_model.image_size)[None])
    rows = [(100, 50, 300, 250, "cup", 0.5), (350, 100, 500, 300, "spoon", 0.8)]
    calls = []
    segmenter = TextSegmenter(ImagePredictor(tiny_model), FakeProposer([rows]))
    reused = segmenter.segment(image, "cup. spoon.", features=lambda: (calls.append(1), features)[1])
    encoded = TextSegmenter(ImagePredictor(tiny_model), FakeProposer([rows])).segment(image, "cup. spoon.")
    assert calls == [1]
    for a, b in zip(reused, encoded):
        np.testing.assert_array_equal(a.mask, b.mask)
        assert a.mask_score == pytest.approx(b.mask_score, abs=1e-6)
    assert segmenter.segment(image, "cup", features=lambda: (calls.append(2), features)[1]) != [] and calls[-1] == 2
    with pytest.raises(TypeError, match="FrameFeatures"):
        segmenter.segment(image, "cup", features=lambda: None)
    nothing = TextSegmenter(ImagePredictor(tiny_model), FakeProposer([[]]))
    assert nothing.segment(image, "cup", features=lambda: calls.append(3)) == [] and 3 not in calls  # not asked for
