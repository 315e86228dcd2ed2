"""moorage: a private container registry for Kubernetes."""

__version__ = "0.1.0"
