"""Tables of the metadata store (SQLAlchemy Core). Alembic migrations in ``migrations/`` create them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

repositories = sa.Table(
    "repositories", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    #: Manifest GETs of the repository, counted by the audit log's batches, never by a pull (migration 0006).
    sa.Column("pull_count", sa.BigInteger, nullable=False, server_default="0"),
)

#: Every blob the content store holds, once, whatever the number of repositories linking it.
blobs = sa.Table(
    "blobs", metadata,
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

#: A blob is visible in a repository only through a link.
repository_blobs = sa.Table(
    "repository_blobs", metadata,
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("digest", sa.String(200), sa.ForeignKey("blobs.digest"), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    #: A blob uploaded, mounted or found (HEAD) here is the repository's until a manifest of it references
    #: it, or until this passes: garbage collection leaves a leased link alone (migration 0007).
    sa.Column("leased_until", sa.Float, nullable=False, server_default="0"),
    sa.Index("ix_repository_blobs_digest", "digest"),
)

manifests = sa.Table(
    "manifests", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("digest", sa.String(200), nullable=False),
    sa.Column("media_type", sa.String(255), nullable=False),
    sa.Column("artifact_type", sa.String(255), nullable=True),
    sa.Column("subject", sa.String(200), nullable=True),
    sa.Column("annotations", sa.Text, nullable=True),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    #: GETs of this manifest and when the last one was, as the repository's pull_count (migration 0006).
    sa.Column("pull_count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("pull_time", sa.Float, nullable=True),
    sa.UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_digest"),
    sa.Index("ix_manifests_subject", "repository_id", "subject"),
)

#: What a manifest points at (layers, config, child manifests): for integrity checks and GC.
manifest_references = sa.Table(
    "manifest_references", metadata,
    sa.Column("manifest_id", sa.Integer, sa.ForeignKey("manifests.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Index("ix_manifest_references_digest", "digest"),
)

#: A tag has its own id (Harbor's Tag.id); a push upserts on (repository, name) (migration 0006).
tags = sa.Table(
    "tags", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("manifest_id", sa.Integer, sa.ForeignKey("manifests.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    #: The last GET of a manifest by this tag.
    sa.Column("pull_time", sa.Float, nullable=True),
    sa.UniqueConstraint("repository_id", "name", name="uq_tags_repository_name"),
    sa.Index("ix_tags_manifest", "manifest_id"),
)

#: Upload sessions live here, not in a process, so any worker or replica can continue one.
uploads = sa.Table(
    "uploads", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("repository", sa.String(255), nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    #: SHA-256 context after ``offset`` bytes, so any process can take the next chunk (migration 0003).
    sa.Column("hash_state", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    #: Who opened the session (an account name, or ``address:<ip>`` when anonymous), for the caps
    #: on open sessions (migration 0004).
    sa.Column("owner", sa.String(300), nullable=False, server_default=""),
    sa.Index("ix_uploads_repository", "repository"),
    sa.Index("ix_uploads_owner", "owner"),
)

#: Scheduled jobs (upload purge, GC, ...): whoever holds a job's unexpired lease is the one process,
#: among all workers and replicas, that runs it (``moorage.core.schedule``).
job_leases = sa.Table(
    "job_leases", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

# -- identity, projects and audit (issue 4) -----------------------------------------------------------

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(255), nullable=False, unique=True),
    sa.Column("email", sa.String(255), nullable=False, server_default=""),
    sa.Column("realname", sa.String(255), nullable=False, server_default=""),
    sa.Column("comment", sa.String(1024), nullable=False, server_default=""),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("sysadmin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    #: Moves on every change of credentials or standing (password, disable, administrator flag): tokens and
    #: refresh tokens carry the value they were issued under and die when it moves (migration 0005).
    sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

projects = sa.Table(
    "projects", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("public", sa.Boolean, nullable=False, server_default=sa.false()),
    #: Harbor's ProjectMetadata (string values) as JSON, ``public`` included for round-tripping.
    sa.Column("metadata_json", sa.Text, nullable=False, server_default="{}"),
    #: Harbor's CVEAllowlist of the project as JSON (items, expires_at, times), None until one is set (0006).
    sa.Column("cve_allowlist_json", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

project_members = sa.Table(
    "project_members", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("role_id", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("project_id", "user_id", name="uq_project_members_project_user"),
    sa.Index("ix_project_members_user", "user_id"),
)

robots = sa.Table(
    "robots", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    #: Stored without the prefix, as Harbor does: ``<project>+<name>`` or ``<name>``.
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("description", sa.String(1024), nullable=False, server_default=""),
    sa.Column("secret_hash", sa.String(255), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("duration", sa.Integer, nullable=False),
    #: Epoch seconds, -1 never.
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    #: Harbor's RobotPermission list as JSON.
    sa.Column("permissions_json", sa.Text, nullable=False),
    sa.Column("creator_ref", sa.Integer, nullable=False, server_default="0"),
    #: As ``users.generation``: secret refresh, disable, duration or permission changes move it.
    sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

#: Token signing keys: created once, so every worker and replica signs and verifies with the same key.
signing_keys = sa.Table(
    "signing_keys", metadata,
    sa.Column("kid", sa.String(128), primary_key=True),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("private_pem", sa.Text, nullable=False),
    sa.Column("public_pem", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

#: Failed-login counters per account and per client address, shared by all workers.
login_failures = sa.Table(
    "login_failures", metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("window_start", sa.Float, nullable=False),
)

#: OAuth2 refresh tokens (access_type=offline), stored as SHA-256 so a database leak reveals none.
refresh_tokens = sa.Table(
    "refresh_tokens", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("account", sa.String(300), nullable=False),
    #: The account by identity, not by name (a re-created name is another account), and the generation of
    #: its credentials the token was issued under (migration 0005).
    sa.Column("account_kind", sa.String(16), nullable=False, server_default=""),
    sa.Column("account_id", sa.Integer, nullable=False, server_default="0"),
    sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
    sa.Column("service", sa.String(255), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(300), nullable=False),
    #: ``project/repo:tag`` or ``project/repo@digest`` (Harbor's resource), or the account for logins.
    sa.Column("resource", sa.String(1024), nullable=False),
    sa.Column("resource_type", sa.String(32), nullable=False),
    sa.Column("operation", sa.String(32), nullable=False),
    sa.Column("project", sa.String(255), nullable=True),
    sa.Column("client", sa.String(64), nullable=True),
    sa.Column("op_time", sa.Float, nullable=False),
    sa.Index("ix_audit_log_project", "project", "op_time"),
    sa.Index("ix_audit_log_time", "op_time"),
)

# -- storage lifecycle (issue 16) ----------------------------------------------------------------------------

#: A blob garbage collection has decided to delete: its row is gone, its content is being removed. A push of
#: the same digest waits until the tombstone is gone, so it never puts content where a deletion is under way.
blob_tombstones = sa.Table(
    "blob_tombstones", metadata,
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

#: Garbage collection runs, as Harbor's GC history shows them.
gc_runs = sa.Table(
    "gc_runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    #: "Manual" or "Schedule"
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("delete_untagged", sa.Boolean, nullable=False),
    #: Harbor's job statuses: Running, Success, Error, Stopped
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("blobs_deleted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("manifests_deleted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("bytes_freed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("log", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

#: Schedules of in-server jobs (Harbor's ScheduleObj: type and cron, with the job's parameters).
schedules = sa.Table(
    "schedules", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("cron", sa.String(128), nullable=False, server_default=""),
    sa.Column("parameters_json", sa.Text, nullable=False, server_default="{}"),
    sa.Column("next_run", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# -- events out: webhooks (issue 19) -------------------------------------------------------------------------

#: The transactional outbox: an event row is written in the transaction of the change it tells of (a push, a
#: tag move, a deletion, a batch of pulls) and lives until a webhook worker has fanned it out to the policies
#: that want it (``moorage.meta.outbox``); a crash between the two loses nothing.
webhook_events = sa.Table(
    "webhook_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    #: Stable across retries, deliveries and restarts: receivers deduplicate on it.
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    #: Harbor's event type: PUSH_ARTIFACT, PULL_ARTIFACT, DELETE_ARTIFACT, CREATE_TAG, DELETE_TAG, ...
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("project", sa.String(255), nullable=False),
    sa.Column("repository", sa.String(255), nullable=False),
    sa.Column("operator", sa.String(300), nullable=False),
    sa.Column("occurred_at", sa.Float, nullable=False),
    #: ``resources`` (digest, tag, media type, size) and anything else the type carries, as JSON.
    sa.Column("data_json", sa.Text, nullable=False),
)

#: Harbor's WebhookPolicy: targets and event types as JSON.
webhook_policies = sa.Table(
    "webhook_policies", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("targets_json", sa.Text, nullable=False),
    sa.Column("event_types_json", sa.Text, nullable=False),
    sa.Column("creator", sa.String(300), nullable=False, server_default=""),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("project_id", "name", name="uq_webhook_policies_project_name"),
)

#: One event for one policy (Harbor's Execution, vendor WEBHOOK); the payload is fixed when it is made.
webhook_executions = sa.Table(
    "webhook_executions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("policy_id", sa.Integer, sa.ForeignKey("webhook_policies.id", ondelete="CASCADE"), nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("event_type", sa.String(32), nullable=False),
    #: The event in Harbor's default shape (type, occur_at, operator, event_data).
    sa.Column("payload_json", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_webhook_executions_policy", "policy_id", "id"),
)

#: The delivery of an execution to one target, retried with backoff. Any process of any replica may deliver:
#: a worker claims a due task by setting it Running with ``next_attempt_at`` at the claim's end, so a killed
#: worker's claim runs out and the task is due again.
webhook_tasks = sa.Table(
    "webhook_tasks", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("execution_id", sa.Integer, sa.ForeignKey("webhook_executions.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("address", sa.String(2048), nullable=False),
    #: Pending (due at ``next_attempt_at``), Running, Success or Error (given up).
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("run_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("claimed_by", sa.String(128), nullable=True),
    sa.Column("log", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("start_time", sa.Float, nullable=True),
    sa.Column("end_time", sa.Float, nullable=True),
    sa.Index("ix_webhook_tasks_due", "status", "next_attempt_at"),
    sa.Index("ix_webhook_tasks_execution", "execution_id"),
)

# -- tag retention and immutable tags (issue 16) -------------------------------------------------------------
# Their ids are never reused, on SQLite too (AUTOINCREMENT): a client, a schedule or a project's retention_id
# that names a deleted policy, rule or run must not come to name a new one.

#: Harbor's immutable tag rules of a project: the rule as Harbor's ImmutableRule carries it (template, action,
#: params, tag and repository selectors) in ``rule_json``; ``disabled`` and ``priority`` as columns.
immutable_rules = sa.Table(
    "immutable_rules", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("rule_json", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_immutable_rules_project", "project_id"),
    sqlite_autoincrement=True,
)

#: A project's tag retention policy (Harbor's RetentionPolicy: algorithm, rules, trigger, scope) as JSON; one per
#: project, and the project's ``retention_id`` metadata names it.
retention_policies = sa.Table(
    "retention_policies", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False,
              unique=True),
    sa.Column("policy_json", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)

#: Runs of a retention policy (Harbor's RetentionExecution).
retention_executions = sa.Table(
    "retention_executions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("policy_id", sa.Integer, sa.ForeignKey("retention_policies.id", ondelete="CASCADE"), nullable=False),
    #: MANUAL or SCHEDULE
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    #: Running, Stopping (asked to stop), Success, Error, Stopped
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float, nullable=True),
    #: Touched while the run goes on: a run quiet for long belongs to a process that died.
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_retention_executions_policy", "policy_id"),
    sqlite_autoincrement=True,
)

#: One repository's part of a run (Harbor's RetentionExecutionTask), with its log: what was kept and removed.
retention_tasks = sa.Table(
    "retention_tasks", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("execution_id", sa.Integer, sa.ForeignKey("retention_executions.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("repository", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("retained", sa.Integer, nullable=False, server_default="0"),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float, nullable=True),
    sa.Column("log", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_retention_tasks_execution", "execution_id"),
    sqlite_autoincrement=True,
)

# -- project quotas (issue 16) ------------------------------------------------------------------------------

#: A project's storage quota (Harbor's Quota, reference "project"): the hard limit in bytes (-1 unlimited) and
#: what its repositories use, kept in the transactions that add and remove references (``moorage.meta.quotas``).
project_quotas = sa.Table(
    "project_quotas", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False,
              unique=True),
    sa.Column("hard", sa.BigInteger, nullable=False, server_default="-1"),
    sa.Column("used", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

#: The distinct content a project's usage counts (manifests and the blobs they reference), each once, with how
#: many references in the project hold it: the usage changes only when a digest's count leaves or reaches 0.
project_blobs = sa.Table(
    "project_blobs", metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("refs", sa.Integer, nullable=False),
)

# -- object storage (issue 17) --------------------------------------------------------------------------------
#: What the blob store keeps about an unfinished upload at its offset (the S3 driver: multipart upload id,
#: parts, tail), saved with the offset so any replica can take the next chunk (migration 0011).
uploads.append_column(sa.Column("store_state", sa.LargeBinary, nullable=True))
