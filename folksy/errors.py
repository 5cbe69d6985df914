"""The one exception type every step raises for bad input; its message is a single line."""


class FolksyError(Exception):
    """Bad input or an unusable resource. The message names the file:line or parameter at fault."""


def run_command(command) -> None:
    """Run a click command so that bad input ends in one `Error: ...` line and a non-zero exit.

    Every step's `__main__` goes through here instead of letting a FolksyError print a traceback.
    """
    import sys

    import click

    try:
        command(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except FolksyError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
