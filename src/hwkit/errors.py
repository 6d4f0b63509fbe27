"""The one exception type the CLI turns into a one-line message and exit code 2."""


class UsageError(Exception):
    """Bad input from the user: a missing path, an empty folder, a file that is not a notebook."""
