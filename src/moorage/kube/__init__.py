"""Credentials the way Kubernetes consumes them.

- ``dockerconfig``: docker ``config.json`` / podman ``auth.json`` files and credential helpers.
- ``secrets``: ``kubernetes.io/dockerconfigjson`` pull Secrets identical to kubectl's.
- ``keyring``: which credentials the kubelet would try for an image, and from where.
- ``provider_protocol``: the kubelet credential-provider exec protocol and its node config.
- ``credential_provider``: the ``moorage-credential-provider`` plugin executable.
"""
