"""Tag retention: the policy of a project, its runs (executions), each run's per-repository tasks, and the
metadata that says which rule templates and selectors a policy may use."""

from __future__ import annotations

from typing import Any

from moorage.api.models.common import Int32, Int64, Model


class RetentionSelector(Model):
    #: ``doublestar``
    kind: str | None = None
    #: ``matches`` / ``excludes`` for tags, ``repoMatches`` / ``repoExcludes`` for repositories.
    decoration: str | None = None
    pattern: str | None = None
    #: A JSON string: ``{"untagged": true}`` also applies the rule to untagged artifacts.
    extras: str | None = None


class RetentionRule(Model):
    id: Int32 | None = None
    priority: Int32 | None = None
    disabled: bool | None = None
    #: ``retain``
    action: str | None = None
    #: latestPushedK, latestPulledN, nDaysSinceLastPush, nDaysSinceLastPull or always.
    template: str | None = None
    #: The template's parameter under the template's own name, e.g. ``{"latestPushedK": 10}``.
    params: dict[str, Any] | None = None
    tag_selectors: list[RetentionSelector] | None = None
    #: ``{"repository": [selectors]}``
    scope_selectors: dict[str, list[RetentionSelector]] | None = None


class RetentionRuleTrigger(Model):
    #: ``Schedule``
    kind: str | None = None
    #: ``{"cron": "0 0 0 * * *"}``: six fields, seconds first; "" for manual runs only.
    settings: dict[str, Any] | None = None
    references: dict[str, Any] | None = None


class RetentionPolicyScope(Model):
    #: ``project``
    level: str | None = None
    #: The project's id.
    ref: Int64 | None = None


class RetentionPolicy(Model):
    id: Int64 | None = None
    #: ``or``: an artifact any rule retains stays.
    algorithm: str | None = None
    rules: list[RetentionRule] | None = None
    trigger: RetentionRuleTrigger | None = None
    scope: RetentionPolicyScope | None = None


class RetentionRuleParamMetadata(Model):
    type: str | None = None
    unit: str | None = None
    required: bool | None = None


class RetentionRuleMetadata(Model):
    rule_template: str | None = None
    display_text: str | None = None
    action: str | None = None
    params: list[RetentionRuleParamMetadata] | None = None


class RetentionSelectorMetadata(Model):
    display_text: str | None = None
    kind: str | None = None
    decorations: list[str] | None = None


class RetentionMetadata(Model):
    templates: list[RetentionRuleMetadata] | None = None
    scope_selectors: list[RetentionSelectorMetadata] | None = None
    tag_selectors: list[RetentionSelectorMetadata] | None = None


class RetentionExecution(Model):
    id: Int64 | None = None
    policy_id: Int64 | None = None
    start_time: str | None = None
    end_time: str | None = None
    #: Running, Success, Error or Stopped.
    status: str | None = None
    #: MANUAL or SCHEDULE.
    trigger: str | None = None
    dry_run: bool | None = None


class RetentionExecutionTask(Model):
    id: Int64 | None = None
    execution_id: Int64 | None = None
    repository: str | None = None
    job_id: str | None = None
    status: str | None = None
    status_code: Int32 | None = None
    status_revision: Int64 | None = None
    start_time: str | None = None
    end_time: str | None = None
    #: Artifacts the rules decided on, and how many of them stay.
    total: Int32 | None = None
    retained: Int32 | None = None


class RetentionRun(Model):
    """``triggerRetentionExecution``'s body."""

    dry_run: bool | None = None


class RetentionOperation(Model):
    """``operateRetentionExecution``'s body: only ``stop``."""

    action: str | None = None
