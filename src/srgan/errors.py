"""The one exception type for mistakes a user can fix (bad path, bad image, bad config, missing weights).

The CLI prints its message as a single line and exits non-zero; Python callers can catch it. Anything
else that escapes is a bug in srgan and keeps its traceback.
"""


class SrganError(Exception):
    """A user-fixable problem. The message names the thing at fault and what to do about it."""
