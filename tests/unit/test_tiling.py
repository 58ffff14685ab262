"""Tiled inference without a model: the grid, sparse masks, merging across tiles, readers, windows."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from samstream.io.readers import BandMapping, PillowReader, TiffReader, open_raster, read_size
from samstream.io.rle import decode_coco_rle, encode_coco_rle
from samstream.tiling.grid import Window, tile_grid
from samstream.tiling.merge import TileMask, TileMerger
from samstream.tiling.run import TileConfig, generate_tiled
from samstream.tiling.sparse import SparseMask
from samstream.tiling.window import prompt_window

from highres_data import ComponentsGenerator, disk as _disk


# ---------------------------------------------------------------------------- grid
@pytest.mark.parametrize("height,width,tile,overlap", [(1000, 700, 256, 32), (300, 300, 100, 0), (513, 2000, 512, 128)])
def test_grid_covers_image_with_overlap(height, width, tile, overlap):
    tiles = tile_grid(height, width, tile=tile, overlap=overlap)
    covered = np.zeros((height, width), dtype=np.int32)
    for t in tiles:
        w = t.window
        assert w.width == min(tile, width) and w.height == min(tile, height)
        covered[w.y0 : w.y1, w.x0 : w.x1] += 1
    assert covered.min() >= 1
    rows = sorted({t.window.y0 for t in tiles})
    cols = sorted({t.window.x0 for t in tiles})
    assert all(b - a <= tile - overlap for a, b in zip(rows, rows[1:]))
    assert all(b - a <= tile - overlap for a, b in zip(cols, cols[1:]))
    assert [t.index for t in tiles] == list(range(len(tiles)))


def test_tile_larger_than_image_is_one_tile():
    (only,) = tile_grid(300, 200, tile=1024, overlap=128)
    assert only.window == Window(0, 0, 200, 300)


def test_grid_rejects_bad_overlap():
    with pytest.raises(ValueError, match="overlap"):
        tile_grid(100, 100, tile=64, overlap=64)
    with pytest.raises(ValueError, match="tile_overlap"):
        TileConfig(tile=64, overlap=-1)


# ---------------------------------------------------------------------------- sparse masks
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 2**32 - 1), st.floats(0.0, 1.0))
def test_sparse_rle_equals_pycocotools(height, width, seed, density):
    rng = np.random.default_rng(seed)
    mask = rng.random((height, width)) < density
    sparse = SparseMask.from_dense(mask)
    assert sparse.to_coco_rle(height, width) == encode_coco_rle(mask[None])[0]
    assert sparse.area == int(mask.sum())
    np.testing.assert_array_equal(sparse.crop(Window(0, 0, width, height)), mask)


def test_sparse_union_and_offsets():
    a = np.zeros((50, 60), dtype=bool)
    a[5:10, 3:9] = True
    b = np.zeros((50, 60), dtype=bool)
    b[8:30, 40:59] = True
    sa = SparseMask.from_dense(a[0:20, 0:20], x0=0, y0=0)
    sb = SparseMask.from_dense(b[0:40, 30:60], x0=30, y0=0)
    assert sb.window == Window(40, 8, 59, 30)
    union = sa.union(sb)
    np.testing.assert_array_equal(decode_coco_rle([union.to_coco_rle(50, 60)])[0], a | b)
    assert union.intersection_area(sa) == sa.area
    assert sa.bbox_xywh == [3.0, 5.0, 5.0, 4.0]


# ---------------------------------------------------------------------------- merging
def _pieces(mask, tiles):
    """What a perfect generator finds in each tile: the mask cut to the tile."""
    out = []
    for t in tiles:
        w = t.window
        piece = mask[w.y0 : w.y1, w.x0 : w.x1]
        out.append([TileMask(SparseMask.from_dense(piece, x0=w.x0, y0=w.y0), 0.9, 0.95, (w.x0, w.y0))] if piece.any() else [])
    return out


def test_object_cut_by_tiles_becomes_one_mask():
    height, width = 300, 400
    disk = _disk(height, width, 200, 150, 80)  # crosses four tiles
    tiles = tile_grid(height, width, tile=160, overlap=40)
    merger = TileMerger(height, width)
    for tile, found in zip(tiles, _pieces(disk, tiles)):
        merger.add_tile(tile, found)
    (merged,) = merger.results()
    np.testing.assert_array_equal(decode_coco_rle([merged.segmentation])[0], disk)
    assert merged.area == int(disk.sum()) and merged.id == 1
    assert len(merged.tiles) >= 4


def test_nested_masks_in_the_overlap_stay_apart_and_ids_are_stable():
    height, width = 200, 300
    tiles = tile_grid(height, width, tile=180, overlap=60)  # two columns, overlap x in [120, 180)
    big = _disk(height, width, 150, 100, 60)
    small = _disk(height, width, 150, 100, 12)  # inside the overlap, seen whole by both tiles
    other = _disk(height, width, 40, 40, 20)  # first tile only
    merger = TileMerger(height, width)
    for tile in tiles:
        w = tile.window
        found = []
        for m in (other, big, small):
            piece = m[w.y0 : w.y1, w.x0 : w.x1]
            if piece.any():
                found.append(TileMask(SparseMask.from_dense(piece, x0=w.x0, y0=w.y0), 0.9, 0.9, (w.x0, w.y0)))
        merger.add_tile(tile, found)
    results = merger.results()
    assert [m.id for m in results] == [1, 2, 3]
    decoded = decode_coco_rle([m.segmentation for m in results])
    np.testing.assert_array_equal(decoded[0], other)
    np.testing.assert_array_equal(decoded[1], big)
    np.testing.assert_array_equal(decoded[2], small)


def test_finished_rows_release_their_objects():
    height, width = 400, 100
    tiles = tile_grid(height, width, tile=100, overlap=20)
    blobs = [_disk(height, width, 50, cy, 15) for cy in (40, 130, 220, 310)]
    merger = TileMerger(height, width)
    held = []
    row = None
    for tile in tiles:
        if tile.window.y0 != row:
            row = tile.window.y0
            merger.finish_above(row)
        w = tile.window
        found = [
            TileMask(SparseMask.from_dense(b[w.y0 : w.y1, w.x0 : w.x1], x0=w.x0, y0=w.y0), 0.9, 0.9, (0, 0))
            for b in blobs
            if b[w.y0 : w.y1, w.x0 : w.x1].any()
        ]
        merger.add_tile(tile, found)
        held.append(merger.open_objects)
    assert max(held) <= 2
    assert len(merger.results()) == 4


def test_generate_tiled_recovers_every_object_from_a_tiff(tmp_path):
    height, width = 700, 900
    rng = np.random.default_rng(3)
    truth = np.zeros((height, width), dtype=bool)
    blobs = []
    for cx, cy, r in [(250, 250, 90), (600, 300, 140), (120, 600, 50), (850, 650, 40), (450, 520, 30)]:
        disk = _disk(height, width, cx, cy, r)
        blobs.append(disk)
        truth |= disk
    image = np.where(truth[:, :, None], 200, rng.integers(0, 100, (height, width, 3))).astype(np.uint8)
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, image, tile=(128, 128), compression="zlib", photometric="rgb")
    with open_raster(path) as reader:
        merged = generate_tiled(ComponentsGenerator(), reader, TileConfig(tile=256, overlap=64))
    decoded = decode_coco_rle([m.segmentation for m in merged])
    assert len(merged) == len(blobs)
    for blob in blobs:  # each object exactly once, whole
        ious = [(d & blob).sum() / (d | blob).sum() for d in decoded]
        assert max(ious) == pytest.approx(1.0)


# ---------------------------------------------------------------------------- readers
def test_tiff_reader_reads_windows_of_tiled_striped_and_planar_tiffs(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (300, 420, 3), dtype=np.uint8)
    window = Window(37, 101, 300, 250)
    expected = image[window.y0 : window.y1, window.x0 : window.x1]
    tifffile.imwrite(tmp_path / "tiled.tif", image, tile=(64, 64), compression="zlib", photometric="rgb")
    tifffile.imwrite(tmp_path / "strips.tif", image, rowsperstrip=16, photometric="rgb")
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(image, 2, 0), planarconfig="separate", photometric="rgb")
    for name in ("tiled", "strips", "planar"):
        with TiffReader(tmp_path / f"{name}.tif") as reader:
            assert (reader.height, reader.width) == (300, 420)
            np.testing.assert_array_equal(reader.read(window), expected, err_msg=name)
        assert read_size(tmp_path / f"{name}.tif") == (420, 300)


def test_sixteen_bit_bands_and_percentile_stretch(tmp_path):
    rng = np.random.default_rng(1)
    bands = rng.integers(1000, 5000, (5, 200, 240)).astype(np.uint16)  # five bands, planar
    path = tmp_path / "multi.tif"
    tifffile.imwrite(path, bands, planarconfig="separate", photometric="minisblack")
    mapping = BandMapping(bands=(4, 3, 2), stretch=(2.0, 98.0))
    with TiffReader(path, mapping) as reader:
        rgb = reader.read(Window(0, 0, 240, 200))
    assert rgb.dtype == np.uint8 and rgb.shape == (200, 240, 3)
    for channel, band in enumerate((3, 2, 1)):
        lo, hi = np.percentile(bands[band].astype(np.float64), [2, 98])
        want = np.clip((bands[band] - lo) * 255.0 / (hi - lo), 0, 255)
        assert np.abs(rgb[:, :, channel].astype(np.float64) - want).max() <= 1.0 + 255.0 * 0.02  # percentiles of a subsample
        assert (rgb[:, :, channel] == 0).mean() == pytest.approx(0.02, abs=0.01)
    with pytest.raises(ValueError, match="no band 6"):
        TiffReader(path, BandMapping(bands=(6, 1, 2)))
    with pytest.raises(ValueError, match="1 or 3"):
        BandMapping(bands=(1, 2))


def test_pillow_reader_windows(tmp_path):
    image = np.random.default_rng(2).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    with open_raster(tmp_path / "a.png") as reader:
        assert isinstance(reader, PillowReader)
        np.testing.assert_array_equal(reader.read(Window(10, 20, 50, 60)), image[20:60, 10:50])
        with pytest.raises(ValueError, match="not inside"):
            reader.read(Window(0, 0, 121, 10))


# ---------------------------------------------------------------------------- prompt windows
def test_prompt_window_centres_holds_box_and_stays_inside():
    w = prompt_window(10000, 8000, 1024, points=np.array([[5000.0, 4000.0]]))
    assert (w.width, w.height) == (1024, 1024) and abs((w.x0 + w.x1) / 2 - 5000) <= 1
    w = prompt_window(10000, 8000, 1024, points=np.array([[10.0, 7990.0]]))
    assert w.x0 == 0 and w.y1 == 8000 and w.width == 1024
    w = prompt_window(10000, 8000, 512, box=np.array([1000.0, 1000.0, 3000.0, 2000.0]))
    assert w.x0 <= 1000 and w.x1 >= 3000 and w.y0 <= 1000 and w.y1 >= 2000
    w = prompt_window(300, 200, 1024, points=np.array([[10.0, 10.0]]))
    assert w == Window(0, 0, 300, 200)


def test_packed_mask_round_trip():
    mask = np.random.default_rng(5).random((37, 23)) < 0.4
    sparse = SparseMask.from_dense(mask, x0=100, y0=7)
    from samstream.tiling.sparse import PackedMask

    packed = PackedMask.pack(sparse)
    assert packed.bits.nbytes <= (sparse.window.area + 7) // 8
    back = packed.unpack()
    assert back.window == sparse.window
    np.testing.assert_array_equal(back.pixels, sparse.pixels)


def test_rle_only_results_hold_no_pixels():
    height, width = 200, 300
    tiles = tile_grid(height, width, tile=128, overlap=32)
    disk = _disk(height, width, 150, 100, 60)
    kept, lean = TileMerger(height, width), TileMerger(height, width, keep_pixels=False)
    for tile, found in zip(tiles, _pieces(disk, tiles)):
        kept.add_tile(tile, found)
        lean.add_tile(tile, found)
    (a,), (b,) = kept.results(), lean.results()
    assert b.mask is None and a.mask is not None
    assert a.segmentation == b.segmentation
