"""Report jobs without AWS: the time budget of a page loop."""

from treue.logic import report_jobs


def test_the_time_budget_keeps_room_for_the_slowest_page(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(report_jobs.time, "monotonic", lambda: clock[0])
    # a request with 29 s, 8 s kept in reserve, at most 20 s of reading
    more = report_jobs.time_budget(lambda: 29_000 - int(clock[0] * 1000), 8_000, 20)
    assert more()
    clock[0] = 6.0  # the first page took 6 s: 14 s are left to read in
    assert more()
    clock[0] = 12.0  # 8 s left: another 6-second page still fits
    assert more()
    clock[0] = 15.0  # 5 s left, less than the slowest page: stop before the request runs over
    assert not more()


def test_the_time_budget_follows_the_invocation_without_a_cap(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(report_jobs.time, "monotonic", lambda: clock[0])
    remaining = [300_000]
    more = report_jobs.time_budget(lambda: remaining[0], 30_000)
    assert more()
    clock[0], remaining[0] = 150.0, 250_000  # a 50-second step
    assert more()
    clock[0], remaining[0] = 200.0, 75_000  # 45 s left above the reserve, the slowest step took 50 s
    assert not more()
