"""The SAM 2 network, one component per module; :mod:`.sam2` composes them."""
