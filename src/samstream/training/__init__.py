"""Training and fine-tuning of SAM 2 models: data, prompt simulation, losses, optimisation, runs.

Submodules are imported explicitly (``from samstream.training.losses import clip_losses``);
importing this package has no side effects and pulls in no optional dependency.
"""
