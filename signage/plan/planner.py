"""What plays now, and until when: a pure function of (items, alerts, now, rotation state).

The rules (also in docs/content.md, "How items rotate"):

- Only items whose validity and weekly windows contain ``now`` are eligible.
- Emergency items and alerts pre-empt everything; several emergencies rotate among themselves.
- Otherwise priority and routine items share the screen by stride scheduling: every item has a
  pass value that grows by 1/weight each time it is shown, and the eligible item with the lowest
  pass plays next (ties: the order of the programme). A priority item (weight 2) therefore comes
  round twice as often as a routine one (weight 1), and equal items rotate fairly in order.
  An item that becomes eligible (new, or back from outside its window) joins at the current
  frontier: it neither starves the others nor plays in a burst of catch-up.
- With nothing eligible the board shows an idle slide (the clock with the commune name).
- The deadline is the earliest moment after ``now`` at which the eligible set can change, so
  the board wakes exactly then instead of polling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

from signage.model import Item, Priority, Window

WEIGHTS: Mapping[Priority, float] = MappingProxyType(
    {Priority.ROUTINE: 1.0, Priority.PRIORITY: 2.0, Priority.EMERGENCY: 1.0}
)
IDLE_REFRESH = timedelta(minutes=1)  # the idle slide shows the time: recompose each minute

Reason = Literal["scheduled", "emergency", "idle"]


@dataclass(frozen=True, slots=True)
class RotationState:
    """How far each item has come in the rotation: item id -> pass value."""

    passes: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Decision:
    """What to show: ``item`` (None for the idle slide), why, until when, and the next deadline.

    ``until`` is when this slide's time is up; ``deadline`` the earliest moment the eligible set
    can change (None if it never will), at which :func:`must_interrupt` says whether to cut in.
    """

    item: Item | None
    reason: Reason
    until: datetime
    deadline: datetime | None
    state: RotationState


def eligible(items: Iterable[Item], now: datetime, tz: ZoneInfo) -> list[Item]:
    """Return the items that may play at ``now``, in their given order."""
    return [item for item in items if item.is_eligible(now, tz)]


def is_emergency(item: Item) -> bool:
    """Return True for an item that pre-empts the programme."""
    return item.priority is Priority.EMERGENCY


def choose(
    items: Sequence[Item],
    alerts: Sequence[Item],
    now: datetime,
    tz: ZoneInfo,
    state: RotationState,
) -> Decision:
    """Return the next slide at ``now`` and the rotation state after it.

    ``items`` is the committed programme (all publishers, in order); ``alerts`` are accepted
    emergency alerts as items. Pure: the same arguments give the same decision.
    """
    everything = [*alerts, *items]
    deadline = next_change(everything, now, tz)
    urgent = [i for i in eligible(everything, now, tz) if is_emergency(i)]
    pool = urgent or [i for i in eligible(items, now, tz) if not is_emergency(i)]
    if not pool:
        idle_until = now.astimezone(UTC) + IDLE_REFRESH  # elapsed time, whatever the zone
        until = min(idle_until, deadline) if deadline is not None else idle_until
        return Decision(None, "idle", until, deadline, _pruned(state, everything))
    passes = dict(_pruned(state, everything).passes)
    for item in pool:
        # Passes of a pool stay within one step of its frontier (0 after every step); an item
        # that is new or back from a pause joins at the frontier, a stale value is brought back.
        step = 1.0 / WEIGHTS[item.priority]
        passes[item.id] = min(max(passes.get(item.id, 0.0), 0.0), step)
    order = {item.id: index for index, item in enumerate(pool)}
    chosen = min(pool, key=lambda i: (passes[i.id], order[i.id]))
    frontier = passes[chosen.id]
    passes[chosen.id] += 1.0 / WEIGHTS[chosen.priority]
    in_pool = {item.id for item in pool}
    # Only the pool moves: items waiting out an emergency keep their places and resume there.
    normalised = MappingProxyType(
        {k: v - frontier if k in in_pool else v for k, v in passes.items()}
    )
    until = now.astimezone(UTC) + timedelta(seconds=chosen.duration_s)
    reason: Reason = "emergency" if urgent else "scheduled"
    return Decision(chosen, reason, until, deadline, RotationState(normalised))


def must_interrupt(
    current: Item | None,
    items: Sequence[Item],
    alerts: Sequence[Item],
    now: datetime,
    tz: ZoneInfo,
) -> bool:
    """Return True when the slide showing ``current`` (None: idle) must end at once.

    That is when the current item left the programme (withdrawn, cancelled or changed) or is no
    longer eligible, when an emergency is eligible and the current slide is not one, or when the
    idle slide is up and something became eligible.
    """
    urgent = any(is_emergency(i) for i in eligible([*alerts, *items], now, tz))
    if current is None:
        return urgent or bool(eligible(items, now, tz))
    if current not in alerts and current not in items:
        return True
    if not current.is_eligible(now, tz):
        return True
    return urgent and not is_emergency(current)


def next_change(items: Iterable[Item], now: datetime, tz: ZoneInfo) -> datetime | None:
    """Return the earliest moment after ``now`` at which any item's eligibility can change.

    Validity limits and weekly window edges count; None when nothing will ever change.
    """
    best: datetime | None = None
    for item in items:
        for moment in _edges(item, now, tz):
            if moment > now and (best is None or moment < best):
                best = moment
    return best


def window_edges(windows: Sequence[Window], now: datetime, tz: ZoneInfo) -> list[datetime]:
    """Return the start and end moments of ``windows`` from a day before ``now`` to 8 days on."""
    local = now.astimezone(tz)
    out: list[datetime] = []
    for offset in range(-1, 9):
        day = local.date() + timedelta(days=offset)
        for window in windows:
            if day.weekday() not in window.days:
                continue
            out.append(_at(day, window.start, tz))
            end_day = day + timedelta(days=1) if window.crosses_midnight else day
            out.append(_at(end_day, window.end, tz))
    return out


def next_window_change(windows: Sequence[Window], now: datetime, tz: ZoneInfo) -> datetime | None:
    """Return the first window edge after ``now``, or None for no windows."""
    later = [m for m in window_edges(windows, now, tz) if m > now]
    return min(later, default=None)


def _edges(item: Item, now: datetime, tz: ZoneInfo) -> list[datetime]:
    out = [m for m in (item.valid_from, item.valid_until) if m is not None]
    out += window_edges(item.windows, now, tz)
    return out


def _at(day: date, moment: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=tz)


def _pruned(state: RotationState, items: Iterable[Item]) -> RotationState:
    """Return ``state`` without items that left the programme (keeps memory bounded)."""
    present = {item.id for item in items}
    if all(key in present for key in state.passes):
        return state
    return RotationState(MappingProxyType({k: v for k, v in state.passes.items() if k in present}))
