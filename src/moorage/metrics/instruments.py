"""Every metric a process updates as things happen, defined once.

With ``moorage serve``'s several Granian workers, prometheus_client's multiprocess mode is on
(``PROMETHEUS_MULTIPROC_DIR``, set by ``moorage.launch`` before any worker starts): each process writes its
values to memory-mapped files there, and a scrape, answered by any one worker, adds up all of them. Without it
(one process, tests in-process) the values live in the default registry.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from moorage.core.gc import Outcome

# Request latencies of a registry: manifest GETs take about a millisecond, blob pushes minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

HTTP_REQUESTS = Counter("moorage_http_requests", "HTTP requests answered, by route template, method and status",
                        ["route", "method", "status"])
HTTP_LATENCY = Histogram("moorage_http_request_duration_seconds", "Time to answer an HTTP request, by route "
                         "template and method", ["route", "method"], buckets=LATENCY_BUCKETS)
HTTP_IN_FLIGHT = Gauge("moorage_http_requests_in_flight", "HTTP requests being answered now",
                       multiprocess_mode="livesum")
HTTP_BYTES_IN = Counter("moorage_http_request_bytes", "Bytes of request bodies received, by route template", ["route"])
HTTP_BYTES_OUT = Counter("moorage_http_response_bytes", "Bytes of response bodies sent, by route template", ["route"])

PUSHES = Counter("moorage_registry_pushes", "Manifests pushed")
PULLS = Counter("moorage_registry_pulls", "Manifests pulled (GET)")
UPLOAD_SESSIONS = Counter("moorage_registry_upload_sessions", "Blob upload sessions opened")
TOKENS_ISSUED = Counter("moorage_token_issued", "Registry bearer tokens issued")
AUTH_FAILURES = Counter("moorage_auth_failures", "Requests refused for bad or missing credentials that carried some")

WEBHOOK_DELIVERIES = Counter("moorage_webhook_deliveries", "Webhook delivery attempts, by event type and outcome "
                             "(success or failure)", ["event_type", "outcome"])

# Garbage collection as the process that ran it saw it (the history every replica shares is in
# ``moorage.metrics.usage``: moorage_gc_runs_total, moorage_gc_bytes_freed_total).
GC_PHASE_SECONDS = Histogram("moorage_gc_phase_seconds", "Time a garbage collection run took to mark (snapshot and "
                             "plan) and to sweep (delete)", ["phase", "dry_run"],
                             buckets=(0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0))
GC_BLOBS_DELETED = Counter("moorage_gc_blobs_deleted", "Blobs garbage collection deleted")

DB_CONNECTIONS_IN_USE = Gauge("moorage_db_pool_connections_in_use", "Metadata database connections checked out of "
                              "the pools", multiprocess_mode="livesum")
DB_ERRORS = Counter("moorage_db_errors", "Errors the metadata database driver raised")


def gc_finished(outcome: Outcome) -> None:
    dry_run = "true" if outcome.dry_run else "false"
    GC_PHASE_SECONDS.labels("mark", dry_run).observe(outcome.mark_seconds)
    if not outcome.dry_run:
        GC_PHASE_SECONDS.labels("sweep", dry_run).observe(outcome.sweep_seconds)
        GC_BLOBS_DELETED.inc(outcome.blobs)


def webhook_attempt(event_type: str, ok: bool) -> None:
    WEBHOOK_DELIVERIES.labels(event_type, "success" if ok else "failure").inc()
