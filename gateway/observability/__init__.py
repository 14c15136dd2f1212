"""Observability: metrics, the access log, and the observer interface the relay reports to."""
