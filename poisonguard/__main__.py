"""``python -m poisonguard`` runs the command line."""

from poisonguard.cli import main

main()
