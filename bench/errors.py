"""The one exception type for bad input: the CLIs print its message as one line and exit 2."""


class UserError(Exception):
    """What is wrong and what is valid, in one line."""
