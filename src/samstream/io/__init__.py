"""Output helpers: crash-safe file writes (:mod:`samstream.io.atomic`) and per-frame mask writers (:mod:`samstream.io.writers`)."""
