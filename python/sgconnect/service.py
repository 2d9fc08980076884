"""Service mode: a script key + ``sudo_as_login``, configured in the hook's settings only.

(Stub: completed by the service-mode work.)
"""

from __future__ import annotations

from typing import Optional

from .credentials import Credential
from .settings import Settings


def service_credential(site: Optional[str], settings: Settings) -> Optional[Credential]:
    """The service credential when service mode is configured, else None."""
    return None
