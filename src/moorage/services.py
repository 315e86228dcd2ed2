"""Every service a worker process serves requests with, built once per process and typed: the registry's
adapters (``/v2/``, the token service) and the management API read them from ``app.state.services``."""

from __future__ import annotations

from dataclasses import dataclass

from moorage.auth.audit_sink import AuditSink
from moorage.auth.context import AuthContext
from moorage.auth.registry_authorizer import TokenAuthorizer
from moorage.blobs.driver import BlobDriver
from moorage.blobs.factory import build_driver
from moorage.core.blobs import BlobService
from moorage.core.events import BatchingSink, EventSink
from moorage.core.gc import GarbageCollector
from moorage.core.immutability import ImmutabilityGuard
from moorage.core.manifests import ManifestService
from moorage.core.quotas import QuotaService
from moorage.core.retention import RetentionService
from moorage.core.tags import TagService
from moorage.core.uploads import UploadLimits, UploadService
from moorage.meta.gc import GCModel
from moorage.meta.registry import RegistryModel
from moorage.meta.schedules import ScheduleModel
from moorage.meta.store import MetaStore
from moorage.meta.tag_policies import TagPolicyModel
from moorage.meta.webhooks import WebhookModel
from moorage.registry.authorizer import Authorizer, OpenAuthorizer
from moorage.settings import Settings


@dataclass
class Services:
    settings: Settings
    store: MetaStore
    model: RegistryModel
    driver: BlobDriver
    uploads: UploadService
    blobs: BlobService
    manifests: ManifestService
    tags: TagService
    gc: GarbageCollector
    schedules: ScheduleModel
    auth: AuthContext
    authorizer: Authorizer
    events: EventSink
    #: Immutable tag rules and retention policies (issue 16).
    tag_policies: TagPolicyModel
    immutability: ImmutabilityGuard
    retention: RetentionService
    #: Webhook policies and deliveries (issue 19).
    webhooks: WebhookModel
    #: Project quotas (issue 16).
    quotas: QuotaService


def build_services(settings: Settings) -> Services:
    store = MetaStore(settings.database)
    model = RegistryModel(store, settings.gc_lease_minutes * 60)
    driver = build_driver(settings, store)
    auth = AuthContext.build(settings, store, model)
    tag_policies = TagPolicyModel(store)
    immutability = ImmutabilityGuard(store, tag_policies)
    manifests = ManifestService(store, model, immutability)
    schedules = ScheduleModel(store)
    limits = UploadLimits(settings.max_uploads_per_repository, settings.max_uploads_per_account,
                          settings.upload_ttl_hours)
    quotas = QuotaService(store, model.quotas)
    return Services(settings=settings, store=store, model=model, driver=driver,
                    # A verified blob is committed only if its project's quota admits it.
                    uploads=UploadService(store, model, driver, limits, admit=quotas.admit_blob),
                    blobs=BlobService(store, model, driver), manifests=manifests, tags=TagService(store, model),
                    gc=GarbageCollector(GCModel(store), driver, settings.gc_grace_minutes),
                    schedules=schedules, auth=auth,
                    authorizer=TokenAuthorizer(auth) if settings.auth_enabled else OpenAuthorizer(),
                    events=BatchingSink(AuditSink(store, auth.audit).write),
                    tag_policies=tag_policies, immutability=immutability,
                    retention=RetentionService(store, tag_policies, schedules, manifests, immutability),
                    webhooks=WebhookModel(store), quotas=quotas)
