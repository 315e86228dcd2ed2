"""containerd with its CRI plugin on, driven the way the kubelet drives it: ``ImageService/PullImage`` over
gRPC on the containerd socket, with the credential the kubelet picked from the pod's pull Secret.

Why not ``ctr``: ctr ignores the CRI plugin's configuration (``config_path`` in config.toml), which is exactly
what a node gets wrong; only a CRI pull shows whether the node's containerd reads the trust in ``certs.d``.
No crictl package exists for Debian 12, so the two messages needed are encoded here by hand (protobuf wire
format, field numbers from k8s.io/cri-api ``runtime/v1/api.proto``) and sent with grpcio.

:class:`CriContainerd` runs ``containerd --config /etc/containerd/config.toml`` — the file
``moorage node-config`` wrote or edited — with private ``--root``/``--state``/``--address``, in a mount
namespace of its own where the node root's ``etc/containerd`` is bind-mounted at ``/etc/containerd``: the
paths node-config writes are the node's own (``config_path = "/etc/containerd/certs.d"``), and this
containerd sees them exactly as a node's containerd would, while nothing of this machine changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import ManagedProcess, require_tool, unmount_under, wait_until

START_TIMEOUT = 60


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): strings and embedded messages."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _strings(fields: dict[int, str]) -> bytes:
    return b"".join(_field(n, v.encode()) for n, v in fields.items() if v)


def pull_image_request(image: str, username: str = "", password: str = "", server_address: str = "") -> bytes:
    """``PullImageRequest{image: ImageSpec{image=1} = 1, auth: AuthConfig{username=1, password=2,
    server_address=4} = 2}``: what the kubelet sends for an image with a matching pull-Secret entry."""
    message = _field(1, _strings({1: image}))
    if username or password:
        message += _field(2, _strings({1: username, 2: password, 4: server_address}))
    return message


def first_string(message: bytes) -> str:
    """Field 1 of a response made of length-delimited fields (``PullImageResponse.image_ref``)."""
    index = 0
    while index < len(message):
        key, index = _read_varint(message, index)
        if key & 7 != 2:
            raise ValueError(f"unexpected wire type {key & 7}")
        length, index = _read_varint(message, index)
        if key >> 3 == 1:
            return message[index:index + length].decode()
        index += length
    return ""


def _read_varint(data: bytes, index: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[index]
        index += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index
        shift += 7


@dataclass(frozen=True)
class PullOutcome:
    ok: bool
    image_ref: str
    error: str


class CriContainerd:
    """A containerd reading ``<node_root>/etc/containerd/config.toml``; ``pull`` goes through the CRI plugin."""

    def __init__(self, workdir: Path, node_root: Path) -> None:
        self.binary = require_tool("containerd", "containerd")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.node_root = Path(node_root)
        self.socket = self.workdir / "containerd.sock"
        self.process: ManagedProcess | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "containerd.log"

    def start(self) -> CriContainerd:
        unshare = require_tool("unshare", "util-linux")
        node_etc = self.node_root / "etc/containerd"
        if not Path("/etc/containerd").is_dir():
            raise AssertionError("/etc/containerd must exist to mount the node's over it: apt-get install containerd")
        containerd = [self.binary, "--config", "/etc/containerd/config.toml", "--root", str(self.workdir / "root"),
                      "--state", str(self.workdir / "state"), "--address", str(self.socket)]
        # `unshare` execs the shell, which execs containerd: one PID from start to stop.
        command = [unshare, "--mount", "--propagation", "private", "--", "sh", "-c",
                   'mount --bind "$0" /etc/containerd && exec "$@"', str(node_etc), *containerd]
        self.process = ManagedProcess(command, self.log_path).start()
        wait_until(self._serving_cri, START_TIMEOUT, "containerd's CRI image service to answer",
                   process=self.process)
        return self

    def restart(self) -> None:
        """What ``systemctl restart containerd`` does on a node: containerd reads config.toml only at start."""
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
        unmount_under(self.workdir)

    def _call(self, method: str, request: bytes, timeout: float) -> bytes:
        import grpc

        with grpc.insecure_channel(f"unix://{self.socket}") as channel:
            call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
            return bytes(call(request, timeout=timeout))

    def _serving_cri(self) -> bool:
        import grpc

        if not self.socket.exists():
            return False
        try:
            # ImageFsInfo answers once the CRI plugin is up (an empty request message).
            self._call("/runtime.v1.ImageService/ImageFsInfo", b"", timeout=5)
        except grpc.RpcError:
            return False
        return True

    def pull(self, image: str, username: str = "", password: str = "", server_address: str = "") -> PullOutcome:
        """``PullImage`` as the kubelet calls it; the error text is the one the kubelet would put in the event."""
        import grpc

        request = pull_image_request(image, username, password, server_address)
        try:
            reply = self._call("/runtime.v1.ImageService/PullImage", request, timeout=120)
        except grpc.RpcError as exc:
            return PullOutcome(False, "", str(exc.details() if hasattr(exc, "details") else exc))
        return PullOutcome(True, first_string(reply), "")
