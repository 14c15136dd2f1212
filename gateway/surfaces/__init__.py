"""Client surfaces: the wire formats clients speak, turned into the canonical form and back; pure."""
