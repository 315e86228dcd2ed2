"""Everything authentication and authorization need, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from moorage.auth.authenticate import Authenticator
from moorage.auth.grants import Granter
from moorage.auth.keys import KeyRing
from moorage.auth.sealing import Sealer
from moorage.auth.standing import Standing
from moorage.auth.tokens import TokenCodec
from moorage.meta.audit import AuditModel
from moorage.meta.identity import IdentityModel
from moorage.meta.projects import ProjectModel
from moorage.meta.registry import RegistryModel
from moorage.meta.store import MetaStore
from moorage.settings import Settings


@dataclass
class AuthContext:
    settings: Settings
    store: MetaStore
    registry: RegistryModel
    identity: IdentityModel
    projects: ProjectModel
    audit: AuditModel
    keys: KeyRing
    codec: TokenCodec
    authenticator: Authenticator
    granter: Granter
    standing: Standing

    @classmethod
    def build(cls, settings: Settings, store: MetaStore, registry: RegistryModel) -> AuthContext:
        identity = IdentityModel(store)
        projects = ProjectModel(store)
        audit = AuditModel(store)
        keys = KeyRing(identity, Sealer(settings))
        codec = TokenCodec(keys, settings.token_issuer, settings.token_service)
        return cls(settings=settings, store=store, registry=registry, identity=identity, projects=projects,
                   audit=audit, keys=keys, codec=codec, authenticator=Authenticator(settings, identity, audit, codec),
                   granter=Granter(projects), standing=Standing(store, identity))
