"""``python -m pixgen`` runs the CLI."""

from pixgen.cli import main

main()
