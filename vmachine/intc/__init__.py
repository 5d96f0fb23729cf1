"""Interrupt controllers: XICS (and later XIVE) for pseries, GICv3/ITS for virt."""
