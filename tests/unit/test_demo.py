"""`make demo` (infra/twin/demo.py) against a fake API: a call that fails ends the walk with one line
and exit status 1, never a traceback; Ctrl-C ends it with 130; either way the webhook it registered
is removed. The reconciliation's 422 report-too-large becomes the report job it names; a twin that
ignores SIGTERM is killed, not waited for forever."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from infra.twin import demo

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = "https://treue.dev/problems/"


class FakeApi:
    """Answers the routes the demo calls first; ``routes[(method, path)]`` overrides an answer with
    ``(status, body)`` or a callable ``(handler, body) -> (status, body)``."""

    def __init__(self) -> None:
        self.webhooks: dict[str, dict] = {}
        self.calls: list[tuple[str, str, dict, object]] = []
        self.routes: dict[tuple[str, str], object] = {}
        self.server: ThreadingHTTPServer | None = None

    def answer(self, handler, method: str, body):
        path = handler.path
        override = self.routes.get((method, path)) or self.routes.get((method, path.split("?")[0]))
        if override is not None:
            return override(handler, body) if callable(override) else override
        if (method, path) == ("GET", "/v1/openapi.json"):
            return 200, {"openapi": "3.1.0"}
        if path == "/v1/program" and method in ("GET", "PATCH"):  # the tiers the walk sets first, set long ago
            return 200, settings(1, "2020-01-01T00:00:00Z", shown_tiers())
        if (method, path) == ("POST", "/v1/webhooks"):
            hook = {"id": f"whk_fake{len(self.webhooks)}", "url": body["url"], "description": body.get("description")}
            self.webhooks[hook["id"]] = hook
            return 201, {**hook, "secret": "whsec_" + "0" * 40}
        if (method, path) == ("GET", "/v1/webhooks"):
            return 200, {"items": list(self.webhooks.values())}
        if method == "DELETE" and path.startswith("/v1/webhooks/"):
            return (204, None) if self.webhooks.pop(path.rsplit("/", 1)[1], None) else (404, None)
        return 404, {"type": PROBLEM + "not-found", "title": "Not found", "status": 404, "detail": path}

    def start(self) -> "FakeApi":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                fake.calls.append((method, self.path, dict(self.headers), body))
                status, answer = fake.answer(self, method, body)
                payload = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                if payload:
                    problem = isinstance(answer, dict) and "type" in answer and status >= 400
                    self.send_header("Content-Type", "application/problem+json" if problem else "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):  # noqa: N802
                self._serve("GET")

            def do_POST(self):  # noqa: N802
                self._serve("POST")

            def do_DELETE(self):  # noqa: N802
                self._serve("DELETE")

            def do_PATCH(self):  # noqa: N802
                self._serve("PATCH")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def state(self) -> dict:
        return {"url": self.url, "aws_endpoint": self.url, "region": "eu-central-1", "program_id": "prg_fake",
                "queues": {"accrual": self.url + "/queue"},
                "api_keys": {"partner": "tr_partner", "finance": "tr_finance", "admin": "tr_admin"}}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    api = FakeApi().start()
    yield api
    api.stop()


def run_demo(fake: FakeApi, tmp_path: Path, *args: str, **popen) -> subprocess.Popen:
    (tmp_path / "local.json").write_text(json.dumps(fake.state()))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "functions")}
    return subprocess.Popen([sys.executable, "-m", "infra.twin.demo", "--state-dir", str(tmp_path), "--batch", "3",
                             *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


def test_a_failed_call_ends_the_demo_with_one_line_and_exit_1_and_removes_the_webhook(fake, tmp_path):
    fake.routes[("POST", "/v1/members")] = (500, {"type": PROBLEM + "internal", "title": "Internal error",
                                                  "status": 500, "detail": "the table did not answer"})
    proc = run_demo(fake, tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "Traceback" not in out + err and "KeyError" not in out + err
    assert ("Enroll a member (POST /v1/members): POST /v1/members answered 500 "
            f"{PROBLEM}internal (Internal error): the table did not answer") in err
    assert [line for line in err.splitlines() if "answered 500" in line][0].startswith("Demo failed after ")
    assert fake.webhooks == {}, "the demo's webhook is still registered"
    assert [(m, p) for m, p, _, _ in fake.calls][-2:] == [("DELETE", "/v1/webhooks/whk_fake0"), ("GET", "/v1/webhooks")]
    assert "Webhook endpoint whk_fake0 removed." in out


def test_a_422_that_is_not_report_too_large_and_a_body_that_is_not_json_are_one_line_too(fake, tmp_path):
    fake.routes[("POST", "/v1/members")] = (422, {"type": PROBLEM + "validation-failed", "title": "The request is "
                                                  "not valid", "status": 422, "detail": "email:\n  not an address"})
    proc = run_demo(fake, tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Traceback" not in out + err
    assert f"answered 422 {PROBLEM}validation-failed (The request is not valid): email: not an address" in err
    assert demo.failure("Step", "GET", "/v1/x", 502, "<html>Bad gateway</html>") == (
        "Step: GET /v1/x answered 502: <html>Bad gateway</html>")
    assert demo.failure("Step", "GET", "/v1/x", 504, None) == "Step: GET /v1/x answered 504: (empty body)"


def test_a_webhook_that_cannot_be_removed_after_a_successful_walk_is_a_failure(fake, monkeypatch):
    fake.routes[("DELETE", "/v1/webhooks/whk_fake0")] = (204, None)  # answers, but the endpoint stays listed
    monkeypatch.setattr(demo.Demo, "walk", lambda self: None)
    api = demo.Api(fake.state())
    with pytest.raises(demo.DemoFailed, match="webhook whk_fake0 is still registered after DELETE"):
        demo.walk(api, fake.state(), Path("local.json"), 3)


def test_ctrl_c_removes_the_webhook_and_exits_130_without_a_traceback(fake, tmp_path):
    entered = threading.Event()

    def slow_enrollment(handler, body):
        entered.set()
        time.sleep(20)  # the demo is interrupted while it waits for this answer
        return 201, {}

    fake.routes[("POST", "/v1/members")] = slow_enrollment
    proc = run_demo(fake, tmp_path)
    assert entered.wait(30), "the demo never enrolled"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in out + err and "Interrupted after" in err
    assert fake.webhooks == {} and "Webhook endpoint whk_fake0 removed." in out


def test_no_answer_at_all_is_one_line(tmp_path):
    dead = {"url": "http://127.0.0.1:9", "api_keys": {"partner": "k"}}
    with pytest.raises(demo.DemoFailed, match=r"^start: GET /v1/members/x: no answer from http://127.0.0.1:9 "):
        demo.Api(dead, timeout=2).call("GET", "/v1/members/x")


def test_a_report_too_large_reconciliation_is_computed_by_the_report_job_it_names(fake, capsys):
    request = {"method": "POST", "href": "/v1/finance/reports", "body": {"type": "reconciliation",
                                                                         "date": "2026-11-20"}}
    fake.routes[("GET", "/v1/finance/reconciliation")] = (422, {
        "type": PROBLEM + "report-too-large", "title": "Too much to answer within one request; create a report job",
        "status": 422, "detail": "this reconciliation report cannot be answered within one request",
        "report_request": request})
    fake.routes[("POST", "/v1/finance/reports")] = (202, {"report_id": "rpt_1", "status": "queued"})
    polls = []

    def report(handler, body):
        polls.append(1)
        done = len(polls) >= 2
        return 200, {"report_id": "rpt_1", "status": "completed" if done else "running",
                     "progress": {"items": 900, "pages": 3}, "failure_reason": None,
                     "summary": {"orders": 1012, "in_flight": 0, "differences": 0} if done else None}

    fake.routes[("GET", "/v1/finance/reports/rpt_1")] = report
    api = demo.Api(fake.state())
    assert demo.reconcile(api, "2026-11-20", "abc") == (1012, 0, " (report job rpt_1)")
    posted = [(h, b) for m, p, h, b in fake.calls if (m, p) == ("POST", "/v1/finance/reports")]
    assert len(posted) == 1 and posted[0][1] == request["body"]
    assert posted[0][0]["Idempotency-Key"] and posted[0][0]["Authorization"] == "Bearer tr_finance"
    assert "422 report-too-large" in capsys.readouterr().out


def test_a_reconciliation_that_fails_or_a_report_job_that_never_ends_is_one_line(fake):
    api = demo.Api(fake.state())
    api.step = "Finance"
    fake.routes[("GET", "/v1/finance/reconciliation")] = (500, {"type": PROBLEM + "internal",
                                                                "title": "Internal error", "detail": "boom"})
    with pytest.raises(demo.DemoFailed, match=r"^Finance: GET /v1/finance/reconciliation\?date=2026-11-20 answered "
                                              r"500 https://treue.dev/problems/internal \(Internal error\): boom$"):
        demo.reconcile(api, "2026-11-20", "abc")
    fake.routes[("GET", "/v1/finance/reconciliation")] = (422, {
        "type": PROBLEM + "report-too-large", "title": "Too much", "detail": "x",
        "report_request": {"method": "POST", "href": "/v1/finance/reports", "body": {"type": "reconciliation"}}})
    fake.routes[("POST", "/v1/finance/reports")] = (202, {"report_id": "rpt_2", "status": "queued"})
    fake.routes[("GET", "/v1/finance/reports/rpt_2")] = (200, {"report_id": "rpt_2", "status": "running",
                                                               "progress": {"items": 5}})
    with pytest.raises(demo.DemoFailed, match=r"report job rpt_2 completing did not happen within 1 s "
                                              r"\(last seen: running, 5 items read\)"):
        demo.reconcile(api, "2026-11-20", "abc", report_seconds=1)
    fake.routes[("GET", "/v1/finance/reports/rpt_2")] = (200, {"report_id": "rpt_2", "status": "failed",
                                                               "failure_reason": "the worker gave up",
                                                               "progress": {"items": 5}})
    with pytest.raises(demo.DemoFailed, match="report job rpt_2 failed: the worker gave up"):
        demo.reconcile(api, "2026-11-20", "abc")


def test_a_read_answered_503_is_asked_again(fake):
    answers = [(503, {"type": PROBLEM + "storage-timeout", "title": "Storage did not answer in time"}),
               (200, {"available": 5})]
    fake.routes[("GET", "/v1/members/m/balance")] = lambda handler, body: answers.pop(0)
    assert demo.Api(fake.state()).call("GET", "/v1/members/m/balance") == (200, {"available": 5})


def test_stopping_a_twin_that_ignores_sigterm_kills_it_instead_of_raising():
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline() == "up\n"
    started = time.monotonic()
    assert demo.stop_twin(proc, seconds=1) == "killed after 1 s"
    assert proc.returncode == -signal.SIGKILL and time.monotonic() - started < 10
    proc.stdout.close()


def test_stopping_a_twin_waits_for_a_slow_but_orderly_stop():
    code = ("import signal, sys, time\n"
            "def bye(*_):\n    time.sleep(1.5)\n    sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, bye); print('up', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline() == "up\n"
    assert demo.stop_twin(proc, seconds=20).startswith("stopped in ")
    assert proc.returncode == 0
    proc.stdout.close()


@pytest.mark.parametrize(("argv", "env", "expected"), [
    ([], {}, 20), ([], {"DEMO_BATCH": "1000"}, 1000), (["--batch", "5"], {"DEMO_BATCH": "1000"}, 5)])
def test_the_batch_size_comes_from_the_flag_then_demo_batch(monkeypatch, argv, env, expected):
    monkeypatch.delenv("DEMO_BATCH", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    seen = {}
    monkeypatch.setattr(demo, "_alive", lambda state: True)
    monkeypatch.setattr(demo, "_read_state", lambda f: {"url": "http://x", "program_id": "p", "api_keys": {}})
    monkeypatch.setattr(demo, "walk", lambda api, state, state_file, batch, fresh_twin: seen.setdefault("batch", batch))
    assert demo.main(argv) == 0
    assert seen["batch"] == expected


@pytest.mark.parametrize(("argv", "env", "message"), [
    (["--batch", "0"], {}, "0 lines: between 1 and 10,000"),
    ([], {"DEMO_BATCH": "lots"}, "DEMO_BATCH: 'lots' is not a whole number of lines"),
    ([], {"DEMO_BATCH": "10001"}, "DEMO_BATCH: 10001 lines: between 1 and 10,000")])
def test_a_bad_batch_size_is_a_usage_error(monkeypatch, capsys, argv, env, message):
    monkeypatch.delenv("DEMO_BATCH", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as exited:
        demo.main(argv)
    assert exited.value.code == 2 and message in capsys.readouterr().err


# ------------------------------------------------------------ the programme part (issue 16)

def test_the_walk_sets_the_tiers_first_and_runs_the_programme_after_the_first_member_accrues(monkeypatch):
    order = []
    for name in ("tiers", "points_over_time", "redeem", "brand_reward", "brand_batch", "books", "audit",
                 "deliveries"):
        monkeypatch.setattr(demo.Demo, name, lambda self, *a, name=name: order.append((name, *a)))
    monkeypatch.setattr(demo.Demo, "accrue", lambda self: order.append(("accrue",)) or "mbr_ada")
    monkeypatch.setattr(demo.Demo, "programme", lambda self, mid: order.append(("programme", mid)))
    demo.Demo(None, {}, Path("local.json"), 3, None).walk()
    assert order == [("tiers",), ("accrue",), ("programme", "mbr_ada"), ("points_over_time",), ("redeem", "mbr_ada"),
                     ("brand_reward",), ("brand_batch",), ("books",), ("audit",), ("deliveries",)]


def test_the_progress_bar_shows_the_value_against_the_next_threshold():
    def view(value, next_tier, needed):
        return {"progress": {"metric": "points", "value": value, "next_tier": next_tier, "needed": needed}}

    assert demo.progress_bar(view(820, "gold", 180), demo.TIERS) == "[################----] 820/1,000 to Gold"
    assert demo.progress_bar(view(0, "silver", 300), demo.TIERS, width=10) == "[----------] 0/300 to Silver"
    assert demo.progress_bar(view(1375, None, 0), demo.TIERS, width=10) == "[##########] 1,375 points, the top tier"


def test_the_first_members_figures_stay_below_silver_and_mary_climbs_within_one_run():
    silver = demo.TIERS["levels"][1]
    assert demo.TIERS["levels"][0]["threshold"] == 0 and 49 + 129 < silver["threshold"]  # Ada's 178 points
    assert {rule["trigger"] for _, rule in demo.RULES} <= {"purchase", "activity", "referral"}  # none pays Ada
    assert all(rule.get("conditions", {}).get("category") for _, rule in demo.RULES if rule["trigger"] == "purchase")


def settings(version: int, updated_at: str, tiers=None) -> dict:
    return {"id": "prg_fake", "version": version, "updated_at": updated_at, "tiers": tiers}


def shown_tiers() -> dict:
    levels = [{**lv, "benefits": {"earn_multiplier_bps": lv.get("benefits", {}).get("earn_multiplier_bps", 10_000),
                                  "catalog_discount_bps": 0, "free_delivery": False}} for lv in demo.TIERS["levels"]]
    return {**demo.TIERS, "levels": levels}


@pytest.mark.parametrize("fresh", [False, True])
def test_new_tiers_are_waited_for_a_minute_unless_the_demo_started_the_twin(fake, capsys, fresh):
    fake.routes[("GET", "/v1/program")] = (200, settings(4, "2020-01-01T00:00:00Z"))
    patches = []

    def patch(handler, body):
        patches.append((handler.headers["If-Match"], handler.headers["Content-Type"], body))
        return 200, settings(5, demo._now(), shown_tiers())

    fake.routes[("PATCH", "/v1/program")] = patch
    run = demo.Demo(demo.Api(fake.state()), fake.state(), Path("local.json"), 3, None)
    run.fresh_twin = fresh
    run.tiers()
    assert patches == [('"4"', "application/merge-patch+json", {"tiers": demo.TIERS})]
    wait = run.tiers_ready - time.monotonic()
    assert (wait <= 0) if fresh else (55 < wait <= 61), wait
    out = capsys.readouterr().out
    assert "version 4 → 5" in out and "Silver from 300 (1.25×) · Gold from 1,000 (1.5×)" in out


def test_tiers_unchanged_for_long_are_not_waited_for_and_tiers_not_shown_fail_the_step(fake):
    fake.routes[("GET", "/v1/program")] = (200, settings(5, "2020-01-01T00:00:00Z", shown_tiers()))
    fake.routes[("PATCH", "/v1/program")] = (200, settings(5, "2020-01-01T00:00:00Z", shown_tiers()))
    run = demo.Demo(demo.Api(fake.state()), fake.state(), Path("local.json"), 3, None)
    run.tiers()
    assert run.tiers_ready <= time.monotonic()
    fake.routes[("PATCH", "/v1/program")] = (200, settings(6, "2020-01-01T00:00:00Z", None))
    with pytest.raises(demo.DemoFailed, match=r"^The admin sets three tiers .*: the settings show the tiers None$"):
        run.tiers()


def test_a_purchase_that_earns_other_than_the_till_was_told_fails_the_demo_and_its_rules_are_retired(fake, capsys):
    rules, retired = {}, []

    def create(handler, body):
        key = handler.headers["Idempotency-Key"]
        if key not in rules:
            rules[key] = {"id": f"rul_{len(rules)}", "version": 1, "name": body["name"], "status": "active"}
            return 201, rules[key]
        return 200, rules[key]

    def retire(handler, body):
        retired.append(handler.path.rsplit("/", 1)[1])
        return 200, {"id": retired[-1], "status": "retired"}

    said = [{"rule_id": "base", "version": 1, "points": 40, "line_index": 0},
            {"rule_id": "base", "version": 1, "points": 20, "line_index": 1},
            {"rule_id": "rul_0", "version": 1, "points": 40, "line_index": 0}]
    fake.routes[("POST", "/v1/rules")] = create
    fake.routes[("POST", "/v1/members")] = (201, {"id": "mbr_mary", "referral_code": "K7QM4XPA"})
    fake.routes[("POST", "/v1/rules/simulate")] = (200, {"points_earned": 100, "breakdown": said})
    fake.routes[("POST", "/v1/members/mbr_mary/purchases")] = (200, {
        "points_earned": 60, "breakdown": said[:2], "replayed": False, "balance": {"available": 60}})
    for n in range(len(demo.RULES)):
        fake.routes[("DELETE", f"/v1/rules/rul_{n}")] = retire
    run = demo.Demo(demo.Api(fake.state()), fake.state(), Path("local.json"), 3, None)
    with pytest.raises(demo.DemoFailed, match=r"^A till: .*: the purchase earned .* the till was told "):
        run.programme("mbr_ada")
    assert sorted(retired) == [f"rul_{n}" for n in range(len(demo.RULES))]
    posted = [b for m, p, _, b in fake.calls if (m, p) == ("POST", "/v1/rules")]
    assert [b["name"] for b in posted] == [r["name"] for _, r in demo.RULES] + ["Books count double"]
    assert all(b["ends_at"] for b in posted)  # a run killed before retiring them leaves rules that end soon
    out = capsys.readouterr().out
    assert "Books count double     v1   line 0 (books)       +40" in out


def test_a_member_who_does_not_climb_fails_the_demo_with_the_tier_seen(fake):
    answers = {"mbr_ada": {"tier": "bronze", "name": "Bronze", "progress": {"value": 178, "next_tier": "silver",
                                                                         "needed": 122}},
               "mbr_mary": {"tier": "bronze", "name": "Bronze", "progress": {"value": 100, "next_tier": "silver",
                                                                          "needed": 200}}}
    fake.routes[("GET", "/v1/members/mbr_ada/tier")] = lambda handler, body: (200, answers["mbr_ada"])
    fake.routes[("GET", "/v1/members/mbr_mary/tier")] = lambda handler, body: (200, answers["mbr_mary"])

    def bought(handler, body):  # earned, but the tier did not change (settings read before the tiers were set)
        answers["mbr_mary"] = {**answers["mbr_mary"], "progress": {"value": 350, "next_tier": "silver", "needed": 0}}
        return 200, {"points_earned": 250, "breakdown": [{"rule_id": "base", "version": 1, "points": 250}],
                     "replayed": False, "balance": {"available": 900}}

    fake.routes[("POST", "/v1/members/mbr_mary/purchases")] = bought
    run = demo.Demo(demo.Api(fake.state()), fake.state(), Path("local.json"), 3, None)
    with pytest.raises(demo.DemoFailed, match=r"^Mary climbs the tiers.*: expected Mary silver with 350 qualifying "
                                              r"points: .*'tier': 'bronze'"):
        run.climb({"id": "mbr_mary"}, "mbr_ada")
