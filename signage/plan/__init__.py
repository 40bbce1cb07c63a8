"""Plan layer: (items, alerts, now) -> what plays now and the next deadline; rotation state."""

from signage.plan.planner import (
    IDLE_REFRESH,
    WEIGHTS,
    Decision,
    RotationState,
    choose,
    eligible,
    is_emergency,
    must_interrupt,
    next_change,
    next_window_change,
    window_edges,
)

__all__ = [
    "IDLE_REFRESH",
    "WEIGHTS",
    "Decision",
    "RotationState",
    "choose",
    "eligible",
    "is_emergency",
    "must_interrupt",
    "next_change",
    "next_window_change",
    "window_edges",
]
