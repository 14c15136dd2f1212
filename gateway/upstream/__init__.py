"""The only door to upstream HTTP: transports, deadlines and SSE decoding; the only importer of requests."""
