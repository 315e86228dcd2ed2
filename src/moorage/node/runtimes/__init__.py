"""What each container runtime on a node is, and how to change its own configuration safely.

``versions`` tells which release of a runtime a node runs (it decides whether containerd reads ``certs.d``
at all), ``containerd`` edits ``config.toml`` in place so the CRI plugin reads the trust ``node-config``
writes, and ``activate`` restarts or reloads a runtime through systemd when asked.
"""
