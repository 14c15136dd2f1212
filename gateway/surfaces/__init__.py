"""The client-facing wire formats, each turned into the canonical chat form and back, without I/O."""
