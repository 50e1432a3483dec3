"""A stacked bar chart as plain numbers for an SVG template: no script, no CDN."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str
    value: int
    label: str


@dataclass(slots=True)
class Chart:
    width: int
    height: int
    plot_top: int
    plot_bottom: int
    plot_left: int
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)  # y, label
    x_labels: list[tuple[float, str]] = field(default_factory=list)  # x, label
    maximum: int = 0


def stacked_bars(
    buckets: Sequence[tuple[str, Mapping[str, int]]],
    series: Sequence[str],
    *,
    width: int = 720,
    height: int = 240,
    label_every: int = 3,
) -> Chart:
    """Lay out one stacked bar per bucket (label, {series: count}), series stacked in order."""
    left, top, bottom = 40, 10, height - 24
    plot_height = bottom - top
    maximum = max((sum(counts.get(s, 0) for s in series) for _, counts in buckets), default=0)
    scale_top = _nice(maximum)
    chart = Chart(width, height, top, bottom, left, maximum=maximum)
    slot = (width - left - 4) / max(1, len(buckets))
    bar_width = max(1.0, slot * 0.8)
    for index, (label, counts) in enumerate(buckets):
        x = left + index * slot + (slot - bar_width) / 2
        y = float(bottom)
        for name in series:
            value = counts.get(name, 0)
            if not value:
                continue
            h = plot_height * value / scale_top
            y -= h
            chart.bars.append(Bar(round(x, 1), round(y, 1), round(bar_width, 1), round(h, 1),
                                  name, value, label))  # fmt: skip
        if index % label_every == 0:
            chart.x_labels.append((round(x + bar_width / 2, 1), label))
    for step in range(5):
        tick = scale_top * step / 4
        chart.ticks.append((round(bottom - plot_height * step / 4, 1), f"{tick:g}"))
    return chart


def _nice(value: int) -> int:
    """Return a round axis top at or above value (1, 2, 5 × 10^n; at least 4)."""
    if value <= 4:
        return 4
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude
