"""The client-facing wire formats: each turns its requests into the canonical chat form and back."""
