"""The `gateway` command: gateway NOUN VERB (db, users, credit, keys, teams, usage, holds).

Amounts are typed in USD and stored as integer micro-USD; --json output is for scripts and stays stable.
Each noun's commands live in the module of that name; this one only gathers them.
"""

from __future__ import annotations

import click

from gateway.cli.db import check, db
from gateway.cli.holds import holds
from gateway.cli.keys import keys
from gateway.cli.teams import teams
from gateway.cli.usage import usage_command
from gateway.cli.users import credit, users


@click.group()
def main() -> None:
    """Run and administer the gateway."""


for command in (db, check, users, credit, keys, teams, usage_command, holds):
    main.add_command(command)
