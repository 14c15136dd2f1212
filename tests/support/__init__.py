"""What test modules share: the store under test, apps and accounts, console forms, settings files.

Test modules import helpers from here (and fakes from tests/fakes), never from each other or from
conftest.py, which holds only fixtures.
"""
