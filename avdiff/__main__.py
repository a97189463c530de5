"""`python -m avdiff ...` runs the same command line as the `avdiff` console script."""

from avdiff.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
