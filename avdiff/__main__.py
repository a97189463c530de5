"""`python -m avdiff ...` runs the same command line as the `avdiff` console script."""

from avdiff.cli import entry_point

if __name__ == "__main__":
    entry_point()
