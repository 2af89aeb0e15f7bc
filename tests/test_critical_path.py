"""Where a run's time goes when phases overlap (report.common.critical_path)."""

from __future__ import annotations

from slimmer.report.common import critical_path, phase_bar


def test_a_phase_beside_a_longer_one_is_off_the_critical_path() -> None:
    phases = [
        {"name": "tracing", "seconds": 3.0, "start": 0.5},
        {"name": "reading the image", "seconds": 10.0, "start": 0.0},
        {"name": "planning", "seconds": 4.0, "start": 10.0},
    ]
    assert critical_path(phases) == [0.0, 10.0, 4.0]
    # the other way round: tracing outlasts the read, and the read's time is beside it
    phases[0]["seconds"], phases[1]["seconds"] = 12.0, 6.0
    phases[2]["start"] = 12.5
    assert critical_path(phases) == [12.0, 0.5, 4.0]


def test_phases_without_a_start_run_one_after_another() -> None:
    phases = [{"name": "a", "seconds": 1.5}, {"name": "b", "seconds": 2.0}]
    assert critical_path(phases) == [1.5, 2.0]


def test_the_bar_shows_critical_time_solid_and_time_beside_light() -> None:
    assert phase_bar(10.0, 5.0, 20.0, width=20) == "█" * 5 + "░" * 5
    assert phase_bar(1.0, 0.0, 0.0) == ""
