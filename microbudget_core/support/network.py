"""Is the Hugging Face Hub reachable? Asked once before a download so offline fails fast."""

import os
import socket
from urllib.parse import urlparse

from huggingface_hub import constants


def hub_reachable(timeout: float = 3.0) -> bool:
    """False when HF_HUB_OFFLINE is set (now or at import) or the Hub cannot be reached in `timeout` s."""
    offline_now = any(os.environ.get(name, "").upper() in ("1", "ON", "YES", "TRUE")
                      for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    if offline_now or constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False
