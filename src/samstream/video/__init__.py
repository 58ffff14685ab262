"""Video input for the streaming tracker: lazily decoded frame sources (see :mod:`samstream.video.sources`)."""
