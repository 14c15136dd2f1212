"""The store: the only importer of sqlalchemy; functions take a connection and never commit."""
