"""``python -m stepdag`` = the ``stepdag`` command."""

from stepdag.cli.main import main

main()
