"""4. Workload 3 with authentication on, plus moorage's token endpoint on its own (tokens/s).

Each side runs a second instance with authentication switched on: distribution with htpasswd (bcrypt;
the client sends Basic credentials on every request), moorage with Docker token auth (the client
follows the 401 challenge once, then sends its Bearer token).
"""

from __future__ import annotations

from bench.harness import Context, wrk_sample
from bench.registry import Registry
from bench.servers import Server, ServerUnavailable, start_server
from bench.workloads.base import Metric, Sample, Target
from bench.workloads.manifests import REPO, manifest_samples

NUMBER = 4
TITLE = "manifest GET/HEAD, authenticated"
METRICS = [
    Metric("get_tag", "GET manifest by tag", "req/s", target=Target(">=", 5.0)),
    Metric("head_digest", "HEAD manifest by digest", "req/s", target=Target(">=", 5.0)),
    Metric("tokens", "token endpoint (moorage only)", "tokens/s"),
]


def measure(ctx: Context, server: Server) -> dict[str, Sample]:
    auth_server = start_server(server.name, ctx.workdir / f"{server.name}-auth", ctx.password, auth=True,
                               workers=ctx.moorage_workers)
    try:
        registry = Registry(auth_server.url, auth_server.credentials)
        challenge = registry.challenge()
        expected = "basic" if server.name == "distribution" else "bearer"
        if challenge is None or challenge.scheme != expected:
            found = "no challenge" if challenge is None else f"a {challenge.scheme} challenge"
            raise ServerUnavailable(f"authentication not available: GET /v2/ gave {found}, not {expected}")
        samples = manifest_samples(ctx, auth_server, registry)
        token = registry.token_url(f"repository:{REPO}:pull")
        if token is None:
            samples["tokens"] = Sample(None, note="no token endpoint (htpasswd sends credentials every request)")
        else:
            url, headers = token
            if not url.startswith(auth_server.url):
                raise ServerUnavailable(f"token realm {url} is not on {auth_server.url}")
            path = url.removeprefix(auth_server.url)
            samples["tokens"] = wrk_sample(*ctx.small_requests(auth_server, path, "GET", headers))
        return samples
    finally:
        auth_server.stop()
