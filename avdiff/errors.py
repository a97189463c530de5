"""Exception types that the command line reports as one clear line instead of a traceback."""


class AVDiffError(Exception):
    """Base class: a problem the user can fix (bad input, bad config, missing file)."""


class ConfigError(AVDiffError, ValueError):
    """A configuration file or override is invalid: names the key, the source and the fix."""


class InputError(AVDiffError, ValueError):
    """An input file (audio, video, model folder) cannot be used as given."""
