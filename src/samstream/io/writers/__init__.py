"""Mask writers fed frame by frame while a video is being tracked, one module per format.

Every writer implements :class:`MaskWriter`::

    with PerObjectPngWriter("out/video1") as writer:
        for frame_idx, obj_ids, masks in tracker_results:      # masks: bool (N, H, W)
            writer.write(frame_idx, obj_ids, masks)

Formats (see :func:`make_writer`):

* ``"png"``     :class:`PerObjectPngWriter` (:mod:`.png`)  ``out/<obj_id:03d>/<frame_idx:05d>.png``
  binary 0/255 (SA-V layout);
* ``"palette"`` :class:`PalettePngWriter` (:mod:`.palette`)  ``out/<frame_idx:05d>.png`` indexed PNG,
  value = object id (DAVIS);
* ``"rle"``     :class:`CocoRleWriter` (:mod:`.rle`)  COCO RLE records in one ``.json`` or ``.jsonl`` file;
* ``"mp4"``     :class:`OverlayVideoWriter` (:mod:`.video`)  the video with colored masks blended in.

Crash safety: PNG and JSON files are written with :mod:`samstream.io.atomic`
(temp file + ``os.replace``), so after an interruption every file on disk is
complete.  JSON-lines files are appended one whole frame per ``write`` system
call; :func:`read_coco_rle` ignores a torn last line.  :class:`OverlayVideoWriter`
encodes a fragmented MP4 (one fragment per second) into ``<path>.partial`` and
renames it to ``<path>`` on :meth:`~MaskWriter.close` (also after Ctrl-C / SIGTERM
through :meth:`~MaskWriter.abort`); a process killed outright leaves the
``.partial`` file, which plays up to its last complete fragment.
"""

from .base import MaskWriter
from .palette import DAVIS_PALETTE, PalettePngWriter
from .png import PerObjectPngWriter
from .registry import WRITER_FORMATS, make_writer
from .rle import CocoRleWriter, encode_rle_records, read_coco_rle
from .video import OverlayVideoWriter, RgbFrameProvider

__all__ = [
    "WRITER_FORMATS",
    "DAVIS_PALETTE",
    "MaskWriter",
    "PerObjectPngWriter",
    "PalettePngWriter",
    "CocoRleWriter",
    "OverlayVideoWriter",
    "RgbFrameProvider",
    "make_writer",
    "read_coco_rle",
    "encode_rle_records",
]
