"""Subcommands of the ``palaute`` command line, one module each."""
