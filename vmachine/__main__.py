import os
import sys

from .cli import main


def _leave(status) -> None:
    """End the process as soon as the run is over, as QEMU does: flush the
    console and the messages, then `os._exit` without the interpreter's
    teardown (freeing every module and the machine's objects takes longer
    than booting a small guest). Nothing of vmachine's needs that teardown:
    files it writes are closed when written and its only thread (the
    --timeout timer) is a daemon. When a flush fails (a closed pipe), or the
    status is not a number, the ordinary exit reports it as before."""
    if isinstance(status, int) and not isinstance(status, bool):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            sys.exit(status)
        os._exit(status & 0xFF)
    sys.exit(status)


_leave(main())
