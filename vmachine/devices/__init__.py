"""Devices that are not interrupt controllers: consoles, timers."""
