"""Webhooks: policies with their targets, executions and tasks (Harbor's Execution and Task), what a project
supports, and when each policy last fired."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from moorage.api.models.common import DateTime, Int64, Model


class WebhookTargetObject(Model):
    #: ``http`` (the only notify type moorage sends).
    type: str | None = None
    address: str | None = None
    #: Sent as the ``Authorization`` header of every delivery.
    auth_header: str | None = None
    skip_cert_verify: bool | None = None
    #: ``Default`` (Harbor's JSON) or ``CloudEvents``.
    payload_format: str | None = None
    #: moorage's extension: signs each delivery with HMAC-SHA256 (``X-Moorage-Signature-256``). Write-only:
    #: never shown back; on update, a target sent without it keeps the one it had.
    secret: str | None = None
    #: moorage's extension: seconds one delivery attempt may take (server default when absent).
    timeout: float | None = Field(default=None, gt=0, le=300)


class WebhookPolicy(Model):
    id: Int64 | None = None
    name: str | None = None
    description: str | None = None
    project_id: Int64 | None = None
    targets: list[WebhookTargetObject] | None = None
    event_types: list[str] | None = None
    creator: str | None = None
    creation_time: DateTime | None = None
    update_time: DateTime | None = None
    enabled: bool | None = None


class Metrics(Model):
    task_count: int | None = None
    success_task_count: int | None = None
    error_task_count: int | None = None
    pending_task_count: int | None = None
    running_task_count: int | None = None
    scheduled_task_count: int | None = None
    stopped_task_count: int | None = None


class Execution(Model):
    id: Int64 | None = None
    vendor_type: str | None = None
    vendor_id: Int64 | None = None
    status: str | None = None
    status_message: str | None = None
    metrics: Metrics | None = None
    trigger: str | None = None
    extra_attrs: dict[str, Any] | None = None
    start_time: str | None = None
    end_time: str | None = None


class Task(Model):
    id: Int64 | None = None
    execution_id: Int64 | None = None
    status: str | None = None
    status_message: str | None = None
    run_count: int | None = None
    extra_attrs: dict[str, Any] | None = None
    creation_time: str | None = None
    update_time: str | None = None
    start_time: str | None = None
    end_time: str | None = None


class PayloadFormat(Model):
    notify_type: str | None = None
    formats: list[str] | None = None


class SupportedWebhookEventTypes(Model):
    event_type: list[str] | None = None
    notify_type: list[str] | None = None
    payload_formats: list[PayloadFormat] | None = None


class WebhookLastTrigger(Model):
    policy_name: str | None = None
    event_type: str | None = None
    enabled: bool | None = None
    creation_time: DateTime | None = None
    last_trigger_time: DateTime | None = None
