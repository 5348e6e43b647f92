"""A lab of local origin hosts (sshd + nginx/apache2 in their own mount namespaces)."""

from agent.lab.core import Lab, default_dir
from agent.lab.host import LabHost

__all__ = ["Lab", "LabHost", "default_dir"]
