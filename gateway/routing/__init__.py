"""Routing: which upstream answers a provider:model id, and in what order its channels are tried."""
