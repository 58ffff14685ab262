"""Image segmentation: input transforms, the image predictor, mask post-processing."""
