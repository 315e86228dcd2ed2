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
# Starlette's Convertor protocol (moorage.registry.routes.RepositoryText).
_.convert
_.to_string
# Typer offers an option's StrEnum members as its choices (moorage.cli.doctor, moorage.cli.node_config).
_.docker
_.containerd
_.crio

# --- Fields read by serialisation (dataclasses.asdict, pydantic, the kubelet's JSON) ----------------------------
_.not_before  # moorage.tls.inspect.CertificateInfo, printed by `moorage tls show --json`
_.service_account_token  # moorage.kube.provider_protocol.CredentialProviderRequest: the kubelet's request
_.service_account_annotations
_.cve_allowlist  # moorage.api.models: a Harbor project field clients send; accepted and validated
_.prev_url, _.platforms  # moorage.portal: read by the portal's Jinja2 templates
# Harbor's definitions (moorage.api.models): fields pydantic writes into every answer; set by keyword, never read.
_.addition_links, _.admin_role_in_auth, _.architecture, _.artifact_id, _.auth_mode, _.auto_sbom_generation
_.auto_scan, _.banner_message, _.child_digest, _.child_id, _.creation_time, _.creator_type, _.current_time
_.current_user_role_id, _.current_user_role_ids, _.deletable, _.developer_count, _.editable
_.enable_content_trust, _.enable_content_trust_cosign, _.entity_id, _.entity_type, _.external_url
_.group_name, _.group_type, _.guest_count, _.harbor_version, _.has_ca_root, _.href, _.icon, _.immutable
_.ldap_group_dn, _.limited_guest_count, _.maintainer_count, _.manifest_media_type, _.max_upstream_conn
_.notification_enable, _.os_features, _.os_version, _.prevent_vul, _.primary_auth_mode
_.private_project_count, _.private_repo_count, _.project_admin_count, _.project_public
_.proxy_cache_local_on_not_found, _.proxy_speed_kb, _.public_project_count, _.public_repo_count, _.push_time
_.read_only, _.registry_storage_provider_name, _.retention_id, _.reuse_sys_cve_allowlist, _.self_registration
_.job_name, _.job_kind, _.job_parameters, _.job_status, _.next_scheduled_time
_.togglable, _.total_project_count, _.total_repo_count, _.total_storage_consumption, _.update_time
_.scope_selectors, _.rule_template, _.display_text, _.templates, _.job_id, _.status_revision  # retention, immutable
_.task_count, _.success_task_count, _.error_task_count, _.pending_task_count, _.running_task_count  # webhooks (issue 19)
_.scheduled_task_count, _.stopped_task_count, _.vendor_type, _.vendor_id, _.status_message, _.notify_type
_.formats, _.payload_formats, _.last_trigger_time
_.record_event  # moorage.meta.outbox: the call other features raise their webhook events with
# Harbor's query options moorage accepts and has nothing to add for (moorage.api.projects, .repositories).
_.with_detail, _.with_label, _.with_scan_overview, _.with_sbom_overview, _.with_immutable_status, _.with_accessory
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
