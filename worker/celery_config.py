"""The Celery application's configuration, from :class:`Settings`.

Reliability over throughput: a message is acknowledged only after its task finished
(``acks_late``), one message per process at a time (prefetch 1), a task whose worker
process died is requeued (``reject_on_worker_lost``), and Redis hands an unacknowledged
message to another worker only after the hard time limit has surely passed
(visibility timeout). Results go to the database, not to a Celery result backend.
"""

from __future__ import annotations

from celery import Celery

from worker.settings import Settings

# Each worker process sets ``HEARTBEAT_KEY + host:pid`` in Redis every few seconds.
HEARTBEAT_KEY = "synthguard:workers:"


def make_celery(settings: Settings) -> Celery:
    app = Celery("synthguard", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_soft_time_limit=settings.soft_time_limit_s,
        task_time_limit=settings.hard_time_limit_s,
        broker_transport_options={
            "visibility_timeout": settings.hard_time_limit_s + 60,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # wait out a broker restart
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
        task_default_queue="scan",
        task_create_missing_queues=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # A pool process loads the models in ``worker_process_init`` before it reports up;
        # that takes seconds (torch, weights, CUDA). With Celery's default of 4 s a process
        # that replaces a dead one is killed before it is up, again and again.
        worker_proc_alive_timeout=120.0,
        enable_utc=True,
    )
    return app
