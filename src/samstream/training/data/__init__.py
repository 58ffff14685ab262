"""Training data: readers that turn datasets on disk into clips, and the mix that batches them.

Every sample is a :class:`~samstream.training.data.sample.ClipSample` (an image is a
1-frame clip). Readers: :mod:`.images` (SA-1B, folders of images with instance
masks), :mod:`.videos` (SA-V masklet JSON, DAVIS / YouTube-VOS palette PNGs),
:mod:`.synthetic` (the generator as a dataset). :mod:`.mix` draws batches from
several datasets by weight and skips bad samples by the rule documented there.
"""
