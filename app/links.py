"""Remote join links that can be shown again after a reload, and renewed ("new link").

The store keeps the token's SHA-256 for lookup (unchanged) and, beside it, the whole link encrypted with a key only the
app has: Fernet (AES-128-CBC + HMAC-SHA256, `cryptography`) under a key derived from the login cookie key (COOKIE_KEY or
the generated `<data_dir>/cookie_key`). A database dump alone yields no working link; changing COOKIE_KEY makes saved
links unreadable (the dashboard then offers a new link). "New link" gives the session a fresh token: the old link stops
working at once.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken

from app import auth, remote, sessions
from settings import Settings
from store.api import Store
from store.models import Patient, Session


# The video relay (REMOTE_VIDEO_RELAY=on): chosen per session when it starts, off unless ticked; the join page tells the
# patient which it is before they consent.
RELAY_CHOICE_LABEL = "Show me the patient's video on the dashboard (relayed by this server)"
RELAY_CHOICE_HELP = ("Only when the video is analysed on this server (server mode, or a browser that cannot run the "
                     "model); in browser mode no video leaves the patient's device. The patient is told on the join "
                     "page. Unticked: run your usual video call beside the dashboard.")
NO_RELAY_CAPTION = ("The dashboard shows the readings, not the patient's video: run your usual video call beside it "
                    "(the video relay of server mode is off: REMOTE_VIDEO_RELAY).")


def _fernet(settings: Settings) -> Fernet:
    digest = hashlib.sha256(b"psya remote join links v1|" + auth.cookie_key(settings).encode("utf-8")).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def remember(store: Store, settings: Settings, session_id: uuid.UUID, link: str) -> None:
    store.save_join_link(session_id, _fernet(settings).encrypt(link.encode("utf-8")).decode("ascii"))


def recall(store: Store, settings: Settings, session_id: uuid.UUID) -> str | None:
    """The saved link, or None (none saved, or saved under another key)."""
    ciphertext = store.get_join_link(session_id)
    if not ciphertext:
        return None
    try:
        return _fernet(settings).decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        return None


def start_remote(store: Store, settings: Settings, patient: Patient, ttl: timedelta = timedelta(hours=2),
                 relay_video: bool = False) -> sessions.RemoteStart:
    started = sessions.start_remote(store, settings, patient, ttl, relay_video)
    remember(store, settings, started.session.id, started.link)
    return started


def new_link(store: Store, settings: Settings, session: Session) -> str:
    rotated = store.rotate_join_token(session.id)
    link = remote.join_link(settings, rotated.token)
    remember(store, settings, session.id, link)
    return link
