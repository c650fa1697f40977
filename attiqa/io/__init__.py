"""Input/output in one place: images, checkpoints, atomic file writes, tables."""
