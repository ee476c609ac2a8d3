"""Property: no sequence of operations moves a job out of a final state,
except an explicit retry of a failed or cancelled job."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from jobqueue import JobSpec, states
from jobqueue.config import Settings
from jobqueue.engine import drain
from jobqueue.store import claims, jobs, upkeep

NOW_RETRY = Settings(retry_base_seconds=0, retry_max_seconds=0, drain_safety_ms=0)
TASKS = st.sampled_from(["echo", "fail", "tests.permanent"])


def test_final_states_are_final_but_for_retry(database, raw):
    class JobLife(RuleBasedStateMachine):
        @initialize()
        def empty(self) -> None:
            raw.run("TRUNCATE jobs")
            self.ids: list[str] = []
            self.seen: dict[str, str] = {}
            self.held: list[tuple[object, int, str]] = []  # (id, attempt, worker) from manual claims
            self.retried: set[str] = set()

        @rule(task=TASKS, attempts=st.integers(1, 3))
        def enqueue(self, task: str, attempts: int) -> None:
            job, _ = jobs.enqueue(database, JobSpec(task, max_attempts=attempts))
            self.ids.append(job["id"])

        @rule(limit=st.integers(1, 3))
        def drain(self, limit: int) -> None:
            drain.run(database, settings=NOW_RETRY, max_jobs=limit)

        @rule(name=st.sampled_from(["A", "B"]))
        def claim(self, name: str) -> None:
            for row in claims.claim(database, worker=name, limit=1, grace=30, fits=60).rows:
                self.held.append((row[0], row[3], name))

        @rule(data=st.data(), outcome=st.sampled_from(["complete", "fail", "fail_final", "release"]))
        def late_or_timely_write(self, data: st.DataObject, outcome: str) -> None:
            if not self.held:
                return
            job_id, attempt, name = data.draw(st.sampled_from(self.held))
            args = {"worker": name, "ids": [job_id], "attempts": [attempt]}
            if outcome == "complete":
                claims.complete(database, results=['"done"'], **args)
            elif outcome == "release":
                claims.release(database, **args)
            else:
                claims.fail(database, finals=[outcome == "fail_final"], delays=[0.0], errors=['{"m":"x"}'], **args)

        @rule()
        def leases_expire(self) -> None:
            raw.run("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE state = 'running'")
            upkeep.rescue(database)

        @rule(data=st.data())
        def cancel(self, data: st.DataObject) -> None:
            if self.ids:
                try:
                    jobs.cancel(database, data.draw(st.sampled_from(self.ids)))
                except Exception as exc:  # noqa: BLE001 - refusals are part of the property
                    assert type(exc).__name__ == "InvalidTransition"

        @rule(data=st.data())
        def retry(self, data: st.DataObject) -> None:
            if self.ids:
                job_id = data.draw(st.sampled_from(self.ids))
                try:
                    jobs.retry(database, job_id)
                    self.retried.add(job_id)
                except Exception as exc:  # noqa: BLE001
                    assert type(exc).__name__ == "InvalidTransition"

        @invariant()
        def finals_hold(self) -> None:
            if not hasattr(self, "ids"):
                return
            now = dict(raw.run("SELECT id::text, state FROM jobs"))
            for job_id, before in self.seen.items():
                after = now[job_id]
                if before in states.FINAL and after != before:
                    assert job_id in self.retried and before in states.RETRYABLE and after == states.PENDING, (
                        f"{job_id}: {before} -> {after} without a retry"
                    )
            self.seen = now
            self.retried = set()
            rows = raw.run("SELECT state, attempts, max_attempts, worker_id FROM jobs")
            for state, attempts, max_attempts, worker_id in rows:
                assert state in states.ALL
                assert (state == "running") == (worker_id is not None)
                if state == "pending":
                    assert attempts < max_attempts

    run_state_machine_as_test(
        JobLife,
        settings=settings(
            max_examples=40, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
