"""``python -m patrolkg`` is the ``patrolkg`` command."""

from .cli import main

main()
