"""The one exception type every step raises for bad input; its message is a single line. And the crash
points the fault tests kill a step at."""


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


def fault_point(name: str) -> None:
    """Die here, as a crash would (SIGKILL), when $FOLKSY_FAULT names this point; used by the crash tests
    only: `register:after_version`, `register:after_staging`, `train:after_checkpoint`."""
    import os
    import signal

    if os.environ.get("FOLKSY_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
