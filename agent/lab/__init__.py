"""A lab of local origin hosts (sshd + nginx/apache2 in their own mount namespaces)."""

from agent.lab.core import Lab, LabHost, default_dir

__all__ = ["Lab", "LabHost", "default_dir"]
