"""Sub-commands of the `avdiff` command line, one module each.

Each module exposes `register(subparsers) -> None`, which adds its parser and sets
`func(args) -> int` as the parser default. `avdiff.cli.COMMAND_MODULES` lists them.
"""
