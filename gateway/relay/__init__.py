"""The relay: hold the worst case, call the upstream (whole or streamed), settle exactly once. No flask."""
