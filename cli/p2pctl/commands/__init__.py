"""The ``p2pctl`` subcommands: each parses its arguments and calls the library."""
