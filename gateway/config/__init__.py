"""Configuration: the settings and the provider and model tables, read and checked once at start-up."""
