"""Errors vmachine reports to its user (never to the guest).

`ConfigError` carries a one-line message for bad command lines, files and
machine configurations: the CLI prints it and exits non-zero, as QEMU does.
Guest mistakes are never Python exceptions: they become guest-error trace
events and architected results.
"""


class VMError(Exception):
    """Base of every error vmachine raises on purpose."""


class ConfigError(VMError):
    """A bad machine configuration, command line or input file (one line)."""


class DeviceError(VMError):
    """A host-API misuse of a device model (the KVM-style ioctl errors)."""

    def __init__(self, errno_name: str, message: str):
        super().__init__(f"{errno_name}: {message}")
        self.errno_name = errno_name
