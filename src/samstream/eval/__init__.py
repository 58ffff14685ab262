"""Evaluation on the video object segmentation benchmarks: dataset layouts, J and F, dataset
inference (processes or Ray) and reports. Nothing heavy is imported here."""
