"""Video input for the streaming tracker: lazily decoded frame sources (see :mod:`samstream.video.sources`).

This file imports nothing: the torch-free ONNX runtime imports :mod:`.session_core` and
:mod:`.streaming_calls` from this package.
"""
