"""QEMU-compatible boards: `pseries` (PowerPC) and `virt` (AArch64); build one
with `registry.create_board` (or `vmachine.create_machine`)."""
