"""The subcommands of ``migfuzz`` other than ``gate`` and ``nightly`` (packages of their own):
one module each, exposing ``HELP``, ``DESCRIPTION``, ``configure(parser)`` and
``run(args) -> int``, so that ``migfuzz.cli`` is a table of them."""
