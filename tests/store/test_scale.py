"""Costs that stay flat as other queues' backlogs and the table grow, proven from
the plans PostgreSQL ran, not from timings.

auto_explain reports, for every statement (those inside the claim function and
the count triggers too), the plan it ran and how many rows each scan read. A
claim of one queue must read only rows of that queue, and about as many as it
takes; reads must read about as many rows as they return; nothing may scan the
whole jobs table. The tables hold tens of thousands of rows, enough for a plan
that reads rows it does not need to show it in thousands of rows read.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

import pytest

from jobqueue import JobSpec
from jobqueue.actions import admin
from jobqueue.engine import drain
from jobqueue.store import claims, connection, jobs, queues, upkeep

BACKLOG = 50_000
DAY = 86400

_EXPLAIN = (
    "LOAD 'auto_explain'",
    "SET auto_explain.log_min_duration = 0",
    "SET auto_explain.log_analyze = on",
    "SET auto_explain.log_buffers = on",
    "SET auto_explain.log_nested_statements = on",
    "SET auto_explain.log_level = notice",
    "SET auto_explain.log_format = json",
)

# Rows made in SQL, never sent from Python. Ids are UUIDv7-like, made from
# each row's creation time (so the primary key is time-ordered as real ids
# are) with the row's serial number in the low bits.
_ADD = """
INSERT INTO jobs (id, queue, task, state, priority, run_at, due, attempts, worker_id, lease_expires_at,
                  created_at, started_at, finished_at)
SELECT CAST(lpad(to_hex(CAST(floor(extract(epoch FROM r.created) * 1000) AS bigint)), 12, '0') || '7'
            || lpad(to_hex(r.i & 4095), 3, '0') || '8' || lpad(to_hex(r.i), 15, '0') AS uuid),
       (CAST(:queues AS text[]))[1 + r.i % cardinality(CAST(:queues AS text[]))], :task, :state, :priority,
       r.created + make_interval(secs => :run_in), r.created + make_interval(secs => :run_in) <= now(),
       CASE WHEN :state IN ('pending', 'cancelled') THEN 0 ELSE 1 END,
       CASE WHEN :state = 'running' THEN 'elsewhere' END,
       CASE WHEN :state = 'running' THEN now() + make_interval(secs => :lease) END,
       r.created,
       CASE WHEN :state IN ('running', 'succeeded', 'failed') THEN r.created END,
       CASE WHEN :state IN ('succeeded', 'failed', 'cancelled') THEN r.created + interval '1 second' END
FROM (SELECT g.i, now() - make_interval(secs => :age) + (g.i - :first) * make_interval(secs => :step) AS created
      FROM generate_series(CAST(:first AS bigint), CAST(:first AS bigint) + :n - 1) AS g(i)) AS r
"""
_serial = [1]


def add(
    conn: Any,
    n: int,
    queues: str | list[str],
    *,
    state: str = "pending",
    task: str = "noop",
    priority: int = 0,
    run_in: float = 0.0,
    age: float = 60.0,
    lease: float = 3600.0,
) -> None:
    """n jobs created evenly over the last ``age`` seconds, due ``run_in`` seconds after creation."""
    first = _serial[0]
    _serial[0] += n
    conn.run(
        _ADD,
        first=first,
        n=n,
        queues=[queues] if isinstance(queues, str) else queues,
        task=task,
        state=state,
        priority=priority,
        run_in=float(run_in),
        lease=float(lease),
        age=float(age),
        step=float(age) / n,
    )


def settle(conn: Any) -> None:
    """The table as autovacuum leaves it: visibility map set, statistics fresh."""
    conn.run("VACUUM ANALYZE jobs")


class Plans:
    """What auto_explain reported for the statements run on one connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        conn.notices = deque(maxlen=100_000)
        for statement in _EXPLAIN:
            conn.run(statement)
        self.plans: list[dict[str, Any]] = []

    def collect(self) -> list[dict[str, Any]]:
        """The plans reported since the last call, as auto_explain's JSON documents."""
        plans = []
        while self.conn.notices:
            message = self.conn.notices.popleft().get(b"M", b"").decode()
            if "plan:" in message:
                plans.append(json.loads(message.split("plan:", 1)[1]))
        self.plans = plans
        return plans

    def scans(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(statement, scan node) for every scan of jobs in the plans collected."""
        for plan in self.plans:
            stack = [plan["Plan"]]
            while stack:
                node = stack.pop()
                stack.extend(node.get("Plans", []))
                if node.get("Relation Name") == "jobs" and "Scan" in node["Node Type"]:
                    yield plan, node

    def rows_read(self) -> int:
        """Rows of jobs that scans produced or threw away, over all the statements."""
        return round(sum(_read(node) for _, node in self.scans()))

    def check(self, most: int, what: str) -> None:
        """No statement scanned the whole table, and all of them read at most ``most`` rows of jobs."""
        assert self.plans, f"{what}: auto_explain reported nothing"
        for plan, node in self.scans():
            assert node["Node Type"] != "Seq Scan", f"{what}: a Seq Scan on jobs in\n{_show(plan)}"
        read = self.rows_read()
        assert read <= most, f"{what}: {read} rows of jobs read (at most {most} expected):\n{self.report()}"

    def report(self) -> str:
        return "\n\n".join(_show(plan) for plan in self.plans)


def _read(node: dict[str, Any]) -> float:
    per_loop = (
        node.get("Actual Rows", 0)
        + node.get("Rows Removed by Filter", 0)
        + node.get("Rows Removed by Index Recheck", 0)
    )
    return per_loop * node.get("Actual Loops", 1)


def _show(plan: dict[str, Any]) -> str:
    """A statement and its plan tree, one node a line, with what each read."""
    lines = [plan.get("Query Text", "").strip()[-600:]]

    def walk(node: dict[str, Any], depth: int) -> None:
        where = node.get("Index Name") or node.get("Relation Name") or ""
        cond = node.get("Index Cond") or node.get("Filter") or ""
        lines.append(
            f"{'  ' * depth}{node['Node Type']} {where} rows={node.get('Actual Rows')} loops={node.get('Actual Loops')}"
            f" removed={node.get('Rows Removed by Filter', 0)} {cond}"
        )
        for child in node.get("Plans", []):
            walk(child, depth + 1)

    walk(plan["Plan"], 1)
    return "\n".join(lines)


@pytest.fixture
def explained(database: connection.Database) -> Iterator[tuple[connection.Database, Plans]]:
    """The process Database with auto_explain reporting every statement it runs."""
    plans = Plans(database.connection)
    yield database, plans
    database.close()


def claim(database: connection.Database, limit: int, queues: list[str] | None) -> claims.Claim:
    return claims.claim(database, worker="w", limit=limit, grace=10.0, fits=1e9, queues=queues)


# --- claims -----------------------------------------------------------------------------


def test_a_named_queue_claim_reads_only_its_own_rows(explained, raw):
    database, plans = explained
    add(raw, BACKLOG, "other", age=3600)
    add(raw, 100, "q1")
    settle(raw)
    plans.collect()
    taken = claim(database, 20, ["q1"])
    plans.collect()
    assert len(taken.rows) == 20 and {row[6] for row in taken.rows} == {"q1"}
    plans.check(3 * 20 + 10, "claim of q1 beside another queue's backlog")


@pytest.mark.parametrize("where", ["q1", "other"])
def test_future_jobs_cost_a_claim_nothing(explained, raw, where):
    """A million jobs due tomorrow, ahead in priority, are not in the claim's way."""
    database, plans = explained
    add(raw, BACKLOG, where, priority=-10, run_in=DAY, age=3600)
    add(raw, 100, "q1")
    settle(raw)
    plans.collect()
    taken = claim(database, 20, ["q1"])
    plans.collect()
    assert len(taken.rows) == 20
    plans.check(3 * 20 + 10, f"claim of q1 beside future jobs in {where}")
    taken = claim(database, 20, None)
    plans.collect()
    assert len(taken.rows) == 20
    plans.check(3 * 20 + 10, f"claim of every queue beside future jobs in {where}")


def test_sleeping_and_waiting_durable_jobs_cost_a_claim_nothing(explained, raw):
    """Fifty thousand durable jobs asleep until tomorrow or waiting for a signal
    (run_at 'infinity'): a claim, and its promotion of the due ones, read
    about as many rows as they take, and a few that just woke are promoted."""
    database, plans = explained
    add(raw, BACKLOG // 2, "q1", state="waiting", priority=-10, run_in=DAY, age=3600)
    add(raw, BACKLOG // 2, "q1", state="waiting", priority=-10, run_in=400 * DAY, age=3600)
    raw.run("UPDATE jobs SET run_at = 'infinity' WHERE run_at > now() + interval '300 days'")  # waits, no timeout
    add(raw, 5, "q1", state="waiting", run_in=-1, age=60)  # their sleep just ended
    add(raw, 100, "q1")
    settle(raw)
    plans.collect()
    taken = claim(database, 20, ["q1"])
    plans.collect()
    assert len(taken.rows) == 20
    plans.check(3 * 20 + 2 * 5 + 10, "claim of q1 beside sleeping and waiting jobs")
    woke = raw.run("SELECT count(*) FROM jobs WHERE state = 'pending' AND due AND priority = 0 AND run_at < now()")
    assert woke[0][0] >= 5 + 100 - 20


def test_suspects_cost_a_claim_one_probe_per_queue_that_has_them(explained, raw):
    """A big crash's suspects, in a paused queue and in a live one, are not in a
    claim's way: it asks whether one waits with a probe per queue that has any,
    and a claim of one reads a few rows, however many wait."""
    database, plans = explained
    add(raw, BACKLOG, "other", age=3600)
    add(raw, BACKLOG // 10, "q2", age=3600)
    raw.run("UPDATE jobs SET suspect = true, due = false")
    queues.configure_queue(database, "other", {"paused": True})
    add(raw, 100, "q1")
    settle(raw)
    plans.collect()
    taken = claim(database, 20, ["q1"])
    plans.collect()
    assert len(taken.rows) == 20 and not taken.suspects
    plans.check(3 * 20 + 10, "claim of q1 beside suspects of other queues")
    taken = claim(database, 20, None)
    plans.collect()
    assert len(taken.rows) == 20 and taken.suspects  # q2's wait to run alone
    plans.check(3 * 20 + 10, "claim of every queue beside suspects")
    alone = claims.claim_alone(database, worker="w2", grace=10.0, fits=1e9)
    plans.collect()
    assert [row[6] for row in alone.rows] == ["q2"]
    plans.check(10, "claim of one suspect among many")


def test_an_all_queues_claim_reads_a_few_rows_per_queue(explained, raw):
    database, plans = explained
    names = [f"w{k:02d}" for k in range(50)]
    add(raw, BACKLOG, "big", priority=5, age=3600)
    add(raw, 50 * 20, names)
    settle(raw)
    plans.collect()
    taken = claim(database, 100, None)
    plans.collect()
    # The first jobs of each queue of the first priority, an even share each,
    # in one statement; the low-priority backlog waits.
    assert sorted(Counter(row[6] for row in taken.rows).values()) == [2] * 50
    # The head of every queue with due work (51 queues), then the jobs taken.
    plans.check(3 * 51 + 3 * 100 + 10, "claim of every queue, 51 of them")
    assert len([p for p in plans.plans if "FOR UPDATE SKIP LOCKED" in p.get("Query Text", "")]) <= 3


def test_a_claim_of_many_queues_serves_the_first_priority_first_then_shares(explained, raw):
    database, plans = explained
    add(raw, 30, "urgent", priority=-5)
    add(raw, 90, ["a", "b", "c"])
    settle(raw)
    for limit in (20, 10):
        taken = claim(database, limit, None)
        assert [row[6] for row in taken.rows] == ["urgent"] * limit
    oldest = raw.run("SELECT queue FROM jobs WHERE state = 'pending' ORDER BY run_at, id LIMIT 1")[0][0]
    taken = claim(database, 31, None)
    # Even shares of the first jobs of each, the odd one to the queue whose first job is oldest.
    assert Counter(row[6] for row in taken.rows) == {q: 11 if q == oldest else 10 for q in "abc"}


def test_an_idle_drain_beside_a_backlog_is_cheap(explained, raw):
    database, plans = explained
    add(raw, BACKLOG, "other", age=3600)
    add(raw, 200, "other", state="running")
    settle(raw)
    drain.run(database, queues=["q1"])  # the first drain of a process also prunes
    plans.collect()
    report = drain.run(database, queues=["q1"])
    plans.collect()
    assert report.processed == 0
    # Rescue looks at the running jobs' leases; the claim reads nothing.
    plans.check(200 + 10, "idle drain of q1 beside another queue's backlog")


def test_the_fanout_questions_read_a_bounded_number_of_rows(explained, raw):
    """How big the backlog is (counted up to a cap per queue) and whether anything is due."""
    database, plans = explained
    add(raw, BACKLOG, "other", age=3600)
    add(raw, BACKLOG, "q1", priority=-10, run_in=DAY, age=3600)
    add(raw, 30, "q1")
    settle(raw)
    plans.collect()
    assert database.run("work_due", queues=["q1"])[0][0] is True
    plans.collect()
    plans.check(10, "work_due of q1")
    assert database.run("work_due", queues=["idle"])[0][0] is False
    plans.collect()
    plans.check(10, "work_due of an empty queue")
    assert database.run("backlog", queues=["q1"], cap=2000)[0][0] == 30
    plans.collect()
    plans.check(30 + 10, "backlog of q1")
    assert database.run("backlog", queues=None, cap=2000)[0][0] == 2030
    plans.collect()
    plans.check(2000 + 30 + 10, "backlog of every queue, 2000 at most per queue")


# --- reads ------------------------------------------------------------------------------

QUEUES = [f"queue-{k:02d}" for k in range(10)]
STATES = ["pending", "running", "succeeded", "failed", "cancelled"]


@pytest.fixture
def history(raw) -> dict[str, Any]:
    """Mostly finished jobs over ten days, then the newest: pending, then running."""
    for state, n in (("succeeded", 40_000), ("failed", 2_500), ("cancelled", 1_500)):
        add(raw, n, QUEUES, state=state, age=10 * DAY)
    add(raw, 5_000, QUEUES, age=1800)
    add(raw, 300, QUEUES, state="running", age=60)
    settle(raw)
    middle = raw.run("SELECT CAST(id AS text) FROM jobs ORDER BY id LIMIT 1 OFFSET 20000")[0][0]
    return {"middle": middle, "running": 300}


def test_stats_and_get_read_almost_nothing(explained, history, raw):
    database, plans = explained
    plans.collect()
    body = admin.stats(database)["stats"]
    plans.collect()
    assert body["totals"]["succeeded"] == 40_000 and body["totals"]["pending"] == 5_000
    # One probe of the claim index per queue and priority: counts are not counted.
    plans.check(2 * len(QUEUES) + 2, "stats")
    some = raw.run("SELECT CAST(id AS text) FROM jobs ORDER BY random() LIMIT 5")
    for (job_id,) in some:
        assert jobs.get(database, job_id)["id"] == job_id
        plans.collect()
        plans.check(1, "get by id")


@pytest.mark.parametrize("cursor", [False, True])
def test_every_list_reads_about_what_it_returns(explained, history, cursor):
    database, plans = explained
    limit = 50
    before = history["middle"] if cursor else None
    variants: list[dict[str, Any]] = [{}]
    variants += [{"state": s} for s in STATES]
    variants += [{"queue": q} for q in QUEUES[:3]]
    variants += [{"queue": q, "state": s} for q in QUEUES[:2] for s in STATES]
    for filters in variants:
        plans.collect()
        page = jobs.list_jobs(database, cursor=before, limit=limit, **filters)
        plans.collect()
        ids = [job["id"] for job in page.jobs]
        assert ids == sorted(ids, reverse=True) and (before is None or all(i < before for i in ids))
        assert all(job[k] == v for job in page.jobs for k, v in filters.items())
        # Every job before the cursor is finished; without one, every list has a page.
        assert page.jobs or (cursor and filters.get("state") in ("pending", "running")), filters
        # A page, plus for lists of every state one page of each state, and for
        # lists of one state across queues two entries per queue (one to find
        # it, one for its newest job) and a page from at most a page's worth
        # of queues (here all ten); running jobs (held by drains, few) are
        # read whole to sort them.
        if set(filters) == {"state"}:
            most = 2 * len(QUEUES) + len(QUEUES) * (limit + 1) + limit + 5
        else:
            most = 4 * (limit + 1) + history["running"] + limit + 5
        plans.check(most, f"list {filters} {'after a cursor' if cursor else 'first page'}")


def test_every_list_pages_through_exactly_its_jobs_newest_first(database, raw):
    """The lists read their indexes in their own way: paged to the end, each
    still gives every job it should, once, in id order."""
    for state, n in (("succeeded", 60), ("failed", 25), ("cancelled", 15)):
        add(raw, n, QUEUES[:3], state=state, age=DAY, task="a" if state == "failed" else "b")
    add(raw, 30, QUEUES[:3], age=600, task="a")
    add(raw, 12, QUEUES[:3], state="running", age=60)
    variants: list[dict[str, Any]] = [{}, {"task": "a"}]
    variants += [{"state": s} for s in STATES] + [{"state": "failed", "task": "a"}]
    variants += [{"queue": QUEUES[1]}, {"queue": QUEUES[1], "task": "a"}]
    variants += [{"queue": QUEUES[2], "state": s} for s in STATES]
    for filters in variants:
        where = " AND ".join(f"{k} = :{k}" for k in filters) or "true"
        expected = [
            r[0] for r in raw.run(f"SELECT CAST(id AS text) FROM jobs WHERE {where} ORDER BY id DESC", **filters)
        ]
        seen, cursor = [], None
        while True:
            page = jobs.list_jobs(database, cursor=cursor, limit=7, **filters)
            seen += [job["id"] for job in page.jobs]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == expected, filters


def test_a_list_by_state_over_more_queues_than_a_page_pages_through_every_job(database, raw):
    """With more queues than a page holds, the list passes over queues whose
    newest job is older than the page can reach: paged to the end, it still
    gives every job once, newest first, with busy, quiet and interleaved queues."""
    many = [f"q{k:02d}" for k in range(30)]
    for k, name in enumerate(many):
        add(raw, 1 + (k * 7) % 11, name, state="failed", age=DAY * (1 + k % 4), task="a" if k % 3 else "b")
        add(raw, 2, name, state="succeeded", age=DAY)
    add(raw, 40, many[:2], state="failed", age=600)  # two queues hold the newest failures
    for filters, limit in (({"state": "failed"}, 3), ({"state": "failed"}, 1), ({"state": "failed", "task": "a"}, 4)):
        where = " AND ".join(f"{k} = :{k}" for k in filters)
        expected = [
            r[0] for r in raw.run(f"SELECT CAST(id AS text) FROM jobs WHERE {where} ORDER BY id DESC", **filters)
        ]
        seen, cursor = [], None
        while True:
            page = jobs.list_jobs(database, cursor=cursor, limit=limit, **filters)
            assert len(page.jobs) <= limit
            seen += [job["id"] for job in page.jobs]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == expected, (filters, limit)


def test_a_list_by_state_reads_pages_from_at_most_a_page_of_queues(explained, raw):
    """Forty queues with old failures and two with new ones: a page of failed
    jobs reads one or two entries of every queue, and whole pages from no more
    queues than the page holds jobs (the ones whose newest job reaches the
    page), not from all forty-two."""
    database, plans = explained
    for k in range(40):
        add(raw, 60, f"old{k:02d}", state="failed", age=10 * DAY)
    add(raw, 60, ["new0", "new1"], state="failed", age=600)
    settle(raw)
    plans.collect()
    page = jobs.list_jobs(database, state="failed", limit=10)
    plans.collect()
    assert {job["queue"] for job in page.jobs} <= {"new0", "new1"} and len(page.jobs) == 10
    page_rows = 10 + 1  # list_jobs asks for one more, to know there is a next page
    plans.check(2 * 42 + page_rows * page_rows + page_rows + 5, "list state=failed over 42 queues")


def test_prune_and_rescue_read_what_they_change(explained, raw):
    database, plans = explained
    add(raw, 20_000, QUEUES, state="succeeded", age=30 * DAY)
    add(raw, 5_000, QUEUES, age=600)
    add(raw, 300, QUEUES, state="running", age=60)
    add(raw, 20, QUEUES, state="running", age=60, lease=-60)
    settle(raw)
    plans.collect()
    assert upkeep.prune(database, 7 * DAY, limit=1000) == 1000
    plans.collect()
    plans.check(2 * 1000 + 10, "prune of 1000")
    assert upkeep.rescue(database).unstarted == 20  # no drain wrote slots for them
    plans.collect()
    plans.check(320 + 2 * 20 + 10, "rescue of 20 among 320 running")


# --- cached plans (issue 7, 3b) --------------------------------------------------------


@pytest.fixture
def quiet_table(raw) -> Iterator[None]:
    """No autovacuum on jobs meanwhile: the burst meets the statistics of an empty table."""
    raw.run("ALTER TABLE jobs SET (autovacuum_enabled = off)")
    yield
    raw.run("ALTER TABLE jobs RESET (autovacuum_enabled)")


def test_a_connection_warmed_on_an_empty_table_drains_a_burst_with_the_right_plans(explained, raw, quiet_table):
    database, plans = explained
    # A table that has been in use, then emptied (pruned, drained): ANALYZE of
    # an empty table keeps the column statistics it had, so this is what a
    # warm container meets. (A table never analyzed at all, on a fresh
    # install before autovacuum first runs, is not this test's case: there
    # the planner has no statistics, and lists and prune may read a queue's
    # or the finished jobs' rows whole until autovacuum has run.)
    add(raw, 300, QUEUES[:3], state="succeeded", age=DAY)
    add(raw, 100, QUEUES[:3], state="failed", age=DAY)
    add(raw, 100, QUEUES[:3], age=600)
    settle(raw)
    raw.run("DELETE FROM jobs")
    settle(raw)
    # Every statement a polling container runs, more than five times on an empty
    # table: when PostgreSQL would switch a prepared statement to its generic plan.
    for _ in range(7):
        job, _ = jobs.enqueue(database, JobSpec("noop", queue="q1"))
        jobs.enqueue_many(database, [JobSpec("noop", queue="q1")])
        drain.run(database, queues=["q1"])
        drain.run(database)
        claims.fail(database, worker="gone", ids=[job["id"]], attempts=[1], finals=[True], delays=[0.0], errors=["{}"])
        claims.release(database, worker="gone", ids=[job["id"]], attempts=[1])
        claims.renew_leases(database, worker="gone", ids=[job["id"]], attempts=[1], grace=1.0)
        jobs.get(database, job["id"])
        admin.stats(database)
        for filters in (
            {},
            {"state": "failed"},
            {"state": "running"},
            {"queue": "q1"},
            {"queue": "q1", "state": "failed"},
        ):
            jobs.list_jobs(database, **filters)
        upkeep.prune(database, 0.0)
        upkeep.rescue(database)
    warm = dict(database._prepared)
    # The burst, with no ANALYZE after it.
    add(raw, BACKLOG, "q1", age=600)
    add(raw, 10_000, "q1", state="succeeded", age=DAY)
    plans.collect()
    for limit in (20, 500):
        taken = claim(database, limit, ["q1"])
        plans.collect()
        assert len(taken.rows) == limit
        plans.check(3 * limit + 10, f"claim of {limit} on the warm connection")
        claims.complete(
            database,
            worker="w",
            ids=[r[0] for r in taken.rows],
            attempts=[r[3] for r in taken.rows],
            results=[None] * limit,
        )
        plans.collect()
        plans.check(2 * limit + 10, f"complete of {limit} on the warm connection")
    report = drain.run(database, queues=["q1"], max_jobs=2000)
    plans.collect()
    assert report.processed == 2000
    claimed = [p for p in plans.plans if "jobqueue_claim" in p.get("Query Text", "")]
    assert claimed, "the drain ran no claim"
    plans.check(3 * 2000 + 50 * 10, "a drain of 2000 on the warm connection")
    for filters in (
        {"state": "succeeded"},
        {"state": "pending"},
        {"queue": "q1"},
        {"queue": "q1", "state": "succeeded"},
    ):
        jobs.list_jobs(database, **filters)
        plans.collect()
        plans.check(5 * 51 + 10, f"list {filters} on the warm connection")
    assert upkeep.prune(database, 0.0, limit=500) == 500
    plans.collect()
    plans.check(2 * 500 + 10, "prune on the warm connection")
    assert admin.stats(database)["stats"]["totals"]["pending"] > 0
    plans.collect()
    plans.check(10, "stats on the warm connection")
    taken = claim(database, 100, None)
    plans.collect()
    assert len(taken.rows) == 100
    plans.check(3 * 100 + 10, "claim of every queue on the warm connection")
    assert database._prepared.keys() >= warm.keys() and all(database._prepared[k] is v for k, v in warm.items())
