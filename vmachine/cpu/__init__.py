"""vCPUs: one Unicorn instance each, with the machine's traps installed."""
from .base import CpuState, StepRecord, VCpu

__all__ = ["CpuState", "StepRecord", "VCpu"]
