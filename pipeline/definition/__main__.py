"""`python -m pipeline.definition VERB`: the command line (`pipeline/cli.py`), kept out of
the package so that building a definition never imports the CLI."""

from pipeline.cli import exit_without_teardown, main

exit_without_teardown(main())
