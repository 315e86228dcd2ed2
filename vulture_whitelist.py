"""Names vulture (``make lint``) reports as unused that are used, by something it cannot see.

Never imported or run: vulture only reads the names below. Each group says who uses them. Decorated
framework entry points and Alembic/pydantic names are ignored in ``[tool.vulture]`` of pyproject.toml instead.
"""

# ruff: noqa
# mypy: ignore-errors

_ = object()

# --- Frameworks -----------------------------------------------------------------------------------------------
# Granian builds the app from the string "moorage.app:create_app" (moorage.launch, MoorageServer).
_.create_app
# Starlette's Router reads it: "/v2" must not redirect to "/v2/" (moorage.app, moorage.api.app).
_.redirect_slashes
# The DB-API connection reads it (moorage.meta.store: moorage issues its own BEGIN).
_.isolation_level
# io.RawIOBase's protocol: BufferedWriter asks it before writing (moorage.blobs.filesystem._UploadFile).
_.writable
# Typer offers an option's StrEnum members as its choices (moorage.cli.doctor, moorage.cli.node_config).
_.docker
_.containerd
_.crio

# --- Fields read by serialisation (dataclasses.asdict, pydantic, the kubelet's JSON) ----------------------------
_.not_before  # moorage.tls.inspect.CertificateInfo, printed by `moorage tls show --json`
_.service_account_token  # moorage.kube.provider_protocol.CredentialProviderRequest: the kubelet's request
_.service_account_annotations
_.cve_allowlist  # moorage.api.models: a Harbor project field clients send; accepted and validated
_.quarantined  # moorage.core.fsck.Problem, in `moorage fsck --json`
_.device  # moorage.core.fsck._Identity: compared as a whole (the dataclass's __eq__)
_.inode

# --- Until the core refactor lands: unused in core/ as far as vulture sees, left to the refactor's author ------
_.content_digest  # moorage.core.fsck._BadManifest: set, never read
_.is_digest  # moorage.core.reference
_.familiar  # moorage.core.reference.ImageReference

# --- Only tests call these: product code does not. Move them into tests/support, or use them. -----------------
_.get_credentials  # moorage.kube.dockerconfig (tests/kube/test_dockerconfig.py, tests/cli/test_login_cli.py)
_.effective_pull_secrets  # moorage.kube.keyring (tests/kube/test_keyring.py)
_.provider_entries  # moorage.kube.keyring (tests/kube/test_keyring.py, tests/e2e)
_.cache_key  # moorage.kube.provider_protocol (tests/kube/test_provider_protocol.py)
_.provider_config_yaml  # moorage.kube.provider_protocol (tests/kube/test_provider_protocol.py)
_.project_exists  # moorage.client.harbor.HarborClient (tests/cli/admin/test_harbor_client.py)
