"""The one exception type every step raises for bad input; its message is a single line."""


class FolksyError(Exception):
    """Bad input or an unusable resource. The message names the file:line or parameter at fault."""
