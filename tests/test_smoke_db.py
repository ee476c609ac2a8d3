from jobqueue import JobSpec, queue, worker


def test_enqueue_and_drain_round_trip(database):
    job, created = queue.enqueue(database, JobSpec("echo", {"x": 1}))
    assert created
    report = worker.drain(database)
    assert report.succeeded == 1
    assert queue.get(database, job["id"])["result"] == {"x": 1}
