"""Exporting models to other runtimes (:mod:`samstream.export.onnx`)."""
