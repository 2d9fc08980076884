"""Farm jobs: the secret-free environment a job needs (submit side), and who the job is (farm side).

Run :func:`job_environment` (unverified) or :func:`verified_job_environment` (verified) in the
submitter (a process logged in as a person: Maya, Nuke, SG Desktop, a submit script after
``sgconnect login``) and merge its result into the job's environment. On the farm, the tool just
calls ``sgconnect.connect(purpose)``: the job is a farm job (:func:`job_identity`), so the chain
(:func:`sgconnect.chain.resolve_for_job`) acts as exactly the person the job names, through the
farm's service mode, or fails.

- **Unverified** (``SGCONNECT_SUDO_AS_LOGIN``): the job names the person. Whoever can edit the
  job's environment can change the person.
- **Verified** (``SGCONNECT_TICKET``): the submitter records a single-use ticket on the site, an
  ``EventLogEntry`` the site stamps with its creator. The job carries only the ticket's id and a
  nonce. The farm reads the ticket with its script key and acts as its creator
  (:func:`verified_credential`): an edited environment can no longer change the person.

Nothing the job gets is a token or a key. The farm's own environment provides the script name
(``SGCONNECT_SERVICE_SCRIPT_NAME``) and the key. See ``docs/farm.md``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any, Optional

from . import environ
from .errors import FarmIdentityError, SgConnectError
from .secret import Secret
from .service import SITE_VARIABLE, SUDO_VARIABLE, validate_login
from .sites import normalize_site, validate_purpose

logger = logging.getLogger("sgconnect.farm")

__all__ = [
    "job_environment",
    "verified_job_environment",
    "job_identity",
    "verified_credential",
    "require_ticket",
    "JobIdentity",
    "PURPOSE_VARIABLE",
    "NON_INTERACTIVE_VARIABLE",
    "JOB_VARIABLE",
    "TICKET_VARIABLE",
    "TICKET_EVENT_TYPE",
    "TICKET_USED_EVENT_TYPE",
    "MAX_TICKET_TTL_SECS",
]

#: The purpose the submitter gave, for the job's own logs and ``connect()`` calls.
PURPOSE_VARIABLE = environ.PURPOSE
#: Forbids prompts in the job (``Settings.non_interactive``).
NON_INTERACTIVE_VARIABLE = environ.NON_INTERACTIVE
#: ``1`` in every farm job: the chain resolves it as a job (:func:`job_identity`).
JOB_VARIABLE = environ.JOB
#: ``<EventLogEntry id>:<nonce>`` of a verified job.
TICKET_VARIABLE = environ.TICKET
#: The ``event_type`` of a ticket (the submit side creates it with the person's session).
TICKET_EVENT_TYPE = "sgconnect_Farm_Ticket"
#: The ``event_type`` of the record that marks a ticket used (the farm's script creates it).
TICKET_USED_EVENT_TYPE = "sgconnect_Farm_Ticket_Used"
#: A ticket may live at most this long (seconds); a longer one is refused on the farm.
MAX_TICKET_TTL_SECS = 7 * 24 * 3600
#: The default life of a ticket (seconds): long enough for a farm queue.
DEFAULT_TICKET_TTL_SECS = 24 * 3600


@dataclass(frozen=True)
class JobIdentity:
    """Who a farm job says it acts for, read from its environment. No secret.

    :ivar person: The login in ``SGCONNECT_SUDO_AS_LOGIN`` (unverified), or ``None``.
    :ivar ticket: ``(EventLogEntry id, nonce)`` from ``SGCONNECT_TICKET`` (verified), or
        ``None``. The nonce is a :class:`~sgconnect.secret.Secret` (a one-time capability).
    :ivar purpose: ``SGCONNECT_PURPOSE``, or ``None``.
    """

    person: Optional[str] = None
    ticket: Optional[tuple[int, Secret]] = None
    purpose: Optional[str] = None

    def __repr__(self) -> str:  # the nonce is a one-time capability: never shown
        ticket = f"ticket #{self.ticket[0]}" if self.ticket else "no ticket"
        return f"JobIdentity(person={self.person!r}, {ticket}, purpose={self.purpose!r})"


def job_identity() -> Optional[JobIdentity]:
    """The farm job this process is, or ``None`` when it is not one.

    A process is a farm job when its environment has ``SGCONNECT_JOB``,
    ``SGCONNECT_SUDO_AS_LOGIN`` or ``SGCONNECT_TICKET``.

    :raises FarmIdentityError: The login or the ticket is malformed (the value is never echoed).
    """
    person_raw = os.environ.get(SUDO_VARIABLE, "").strip()
    ticket_raw = os.environ.get(TICKET_VARIABLE, "").strip()
    if not (person_raw or ticket_raw or os.environ.get(JOB_VARIABLE, "").strip()):
        return None
    person = validate_login(person_raw, error=FarmIdentityError) if person_raw else None
    ticket = _parse_ticket(ticket_raw) if ticket_raw else None
    purpose = os.environ.get(PURPOSE_VARIABLE, "").strip() or None
    return JobIdentity(person=person, ticket=ticket, purpose=purpose)


def require_ticket(farm_identity: str, job: Optional[JobIdentity], site: Optional[str]) -> None:
    """Refuse, on a node whose ``farm_identity`` setting is ``verified``, anything but a ticket.

    There, the script key serves only a job whose ``SGCONNECT_TICKET`` the site proves: a job
    that names a person, names nobody (``SGCONNECT_JOB=1``), or is no job at all (every job
    variable removed) is refused before any credential is looked at.

    :raises FarmIdentityError: ``farm_identity`` is ``verified`` and ``job`` has no ticket.
    """
    if farm_identity != "verified" or (job is not None and job.ticket is not None):
        return
    if job is None:
        what = "a process without a farm ticket may not use the script key"
    elif job.person is not None:
        what = f"this job names {job.person} ({SUDO_VARIABLE}) without a ticket"
    else:
        what = "this job names nobody and has no ticket"
    raise FarmIdentityError(
        f"This node accepts verified farm jobs only (farm_identity: verified), and {what}: "
        "submit the job with sgconnect.farm.verified_job_environment().",
        site,
        expected=None,
        actual=job.person if job is not None else None,
    )


def job_environment(purpose: str, site: Optional[str] = None) -> dict[str, str]:
    """The environment variables a farm job needs to act as the current user. No secret.

    Unverified: the job names the person, and the farm trusts whoever wrote the job's
    environment. Use :func:`verified_job_environment` where that is not enough.

    :param purpose: What the job does ("render", "publish"), validated like ``connect()``'s.
    :param site: The site; ``None`` for the current user's default site.
    :returns: ``SGCONNECT_SITE``, ``SGCONNECT_SUDO_AS_LOGIN`` (the current user's login),
        ``SGCONNECT_JOB`` and ``SGCONNECT_NON_INTERACTIVE`` (``"1"``) and
        ``SGCONNECT_PURPOSE``. When the current user is itself a script acting as nobody,
        ``SGCONNECT_SUDO_AS_LOGIN`` is left out and the job acts as the farm's script.
    :raises InvalidPurposeError: The purpose is empty, too long or has control characters.
    :raises LoginRequiredError: This process has no logged-in user and may not prompt.
    """
    from . import current_user

    purpose = validate_purpose(purpose)
    user = current_user(normalize_site(site) if site else None)
    environment = _base_environment(normalize_site(user.site), purpose)
    acting_as_itself = user.script_name is not None and user.sudo_as_login is None
    if not acting_as_itself:
        environment[SUDO_VARIABLE] = validate_login(user.login)
    return environment


def verified_job_environment(
    purpose: str, site: Optional[str] = None, ttl_secs: float = DEFAULT_TICKET_TTL_SECS
) -> dict[str, str]:
    """Record a single-use ticket on the site as the current person; return the job's environment.

    The ticket is an ``EventLogEntry`` (``event_type`` :data:`TICKET_EVENT_TYPE`) created with
    the person's own credential, so the site stamps its ``created_by``. Its ``meta`` holds the
    purpose, the expiry (seconds since the epoch) and the SHA-256 of a random nonce; the nonce
    itself goes only into the job's environment. One request to the site.

    :param purpose: What the job does, validated like ``connect()``'s; the farm checks it.
    :param site: The site; ``None`` for the current user's default site.
    :param ttl_secs: How long the ticket may wait in the farm's queue (at most
        :data:`MAX_TICKET_TTL_SECS`).
    :returns: ``SGCONNECT_SITE``, ``SGCONNECT_TICKET`` (``<id>:<nonce>``), ``SGCONNECT_JOB``,
        ``SGCONNECT_NON_INTERACTIVE`` and ``SGCONNECT_PURPOSE``. No login, no token.
    :raises FarmIdentityError: The current credential is not a person (a script acting as
        itself cannot vouch for anyone), or ``ttl_secs`` is not a number in range.
    :raises LoginRequiredError: This process has no logged-in user and may not prompt.
    """
    from . import connect, current_user

    purpose = validate_purpose(purpose)
    number = isinstance(ttl_secs, (int, float)) and not isinstance(ttl_secs, bool)
    if not number or not (0 < ttl_secs <= MAX_TICKET_TTL_SECS):  # NaN fails the range too
        asked = f"{ttl_secs!r} was asked" if number else f"a {type(ttl_secs).__name__} was given"
        raise FarmIdentityError(
            f"A farm ticket lives between 1 second and {MAX_TICKET_TTL_SECS} seconds (a number "
            f"of seconds); {asked}."
        )
    site = normalize_site(site) if site else None
    user = current_user(site)
    if user.script_name is not None:
        raise FarmIdentityError(
            f"A verified farm ticket must be created with a person's own session; this process "
            f"acts through script {user.script_name}. Log in as the person (`sgconnect login`).",
            user.site,
        )
    nonce = Secret(secrets.token_urlsafe(32))
    expires_at = int(time.time() + ttl_secs)
    sg = connect(purpose, user.site, interactive=False)
    fields = {
        "event_type": TICKET_EVENT_TYPE,
        "description": f"sgconnect farm ticket for {purpose!r}",
        "meta": {
            "purpose": purpose,
            "expires_at": expires_at,
            "nonce_sha256": _digest(nonce.reveal()),
        },
    }
    try:
        ticket = sg.create("EventLogEntry", fields)
    except SgConnectError:
        raise
    except Exception as exc:  # the site refused the entity (permissions, schema)
        raise FarmIdentityError(
            f"{user.site} refused to record a farm ticket for {user.login} "
            f"({exc.__class__.__name__}): the person needs permission to create EventLogEntry "
            "records; or submit unverified with sgconnect.farm.job_environment().",
            user.site,
            expected=user.login,
        ) from None
    environment = _base_environment(normalize_site(user.site), purpose)
    environment[TICKET_VARIABLE] = f"{int(ticket['id'])}:{nonce.reveal()}"
    logger.info(
        "Farm ticket #%s on %s for %s (purpose %r, expires in %d s).",
        ticket["id"],
        user.site,
        user.login,
        purpose,
        int(ttl_secs),
    )
    return environment


def verified_credential(
    site: str,
    script_name: str,
    key: Any,
    job: JobIdentity,
    *,
    timeout_secs: Optional[float],
    http_proxy: Optional[str] = None,
) -> Any:
    """Check the job's ticket on the site with the script key; the script acting as its creator.

    Checks, in order: the ticket exists and is an sgconnect ticket; the nonce's SHA-256 matches
    (constant time); it has not expired and did not ask for more than :data:`MAX_TICKET_TTL_SECS`;
    its purpose is the job's; its creator is an active HumanUser; and it was not used before.
    Single use: the script creates a :data:`TICKET_USED_EVENT_TYPE` ``EventLogEntry`` naming the
    ticket, then reads them all back; only the process whose record has the lowest id (the site
    numbers records in order) among those the same script (ApiUser) created may go on: a mark
    anybody else made is ignored. ``EventLogEntry`` records are never updated, so the
    mark needs only the script's create and read permissions.

    :param key: The script key (a :class:`~sgconnect.secret.Secret`, or a ``str``).
    :returns: A :class:`~sgconnect.credentials.ScriptCredential` with ``sudo_as_login`` the
        creator's login and ``source="verified"``.
    :raises FarmIdentityError: A check failed; the message names which, never the nonce.
    """
    from .connection import ScriptConnection
    from .credentials import ScriptCredential

    assert job.ticket is not None
    ticket_id, nonce = job.ticket
    reader = ScriptConnection(
        ScriptCredential(site, script_name, key, source="service"),
        timeout_secs=timeout_secs,
        http_proxy=http_proxy or None,
    )

    def refuse(why: str, expected: Optional[str] = None) -> FarmIdentityError:
        return FarmIdentityError(
            f"Farm ticket #{ticket_id} on {site} refused: {why}. Submit the job again from the "
            "person's own session (sgconnect.farm.verified_job_environment).",
            site,
            expected=expected,
        )

    ticket = _service_call(
        site,
        script_name,
        lambda: reader.find_one(
            "EventLogEntry",
            [["id", "is", ticket_id]],
            ["event_type", "meta", "created_by"],
        ),
    )
    if not ticket or ticket.get("event_type") != TICKET_EVENT_TYPE:
        raise refuse("there is no such ticket on the site")
    meta = ticket.get("meta") if isinstance(ticket.get("meta"), dict) else {}
    stored = meta.get("nonce_sha256")
    if not isinstance(stored, str) or not hmac.compare_digest(stored, _digest(nonce.reveal())):
        raise refuse("the nonce does not match the ticket")
    expires_at = meta.get("expires_at")
    now = time.time()
    if not isinstance(expires_at, (int, float)) or isinstance(expires_at, bool):
        raise refuse("it has no expiry")
    if expires_at <= now:
        raise refuse("it expired")
    if expires_at > now + MAX_TICKET_TTL_SECS:
        raise refuse(f"it claims to live longer than {MAX_TICKET_TTL_SECS} seconds")
    if job.purpose is not None and meta.get("purpose") != job.purpose:
        raise refuse(f"it was issued for another purpose than {job.purpose!r}")
    creator = ticket.get("created_by") or {}
    if not isinstance(creator, dict) or creator.get("type") != "HumanUser":
        raise refuse("it was not created by a person (HumanUser)")
    person = _service_call(
        site,
        script_name,
        lambda: reader.find_one(
            "HumanUser", [["id", "is", creator.get("id")]], ["login", "sg_status_list"]
        ),
    )
    login = (person or {}).get("login")
    if not isinstance(login, str) or not login:
        raise refuse("its creator is no longer a user of the site")
    login = validate_login(login, what="the ticket creator's login")
    if job.person is not None and job.person.lower() != login.lower():
        raise FarmIdentityError(
            f"Farm ticket #{ticket_id} on {site} was created by {login}, but the job also names "
            f"{job.person} ({SUDO_VARIABLE}): remove that variable, the ticket says who.",
            site,
            expected=login,
            actual=job.person,
        )
    description = f"sgconnect farm ticket #{ticket_id} used"
    mark = _service_call(
        site,
        script_name,
        lambda: reader.create(
            "EventLogEntry",
            {
                "event_type": TICKET_USED_EVENT_TYPE,
                "description": description,
                "meta": {"ticket_id": ticket_id},
            },
        ),
    )
    marks = _service_call(
        site,
        script_name,
        lambda: reader.find(
            "EventLogEntry",
            [["event_type", "is", TICKET_USED_EVENT_TYPE], ["description", "is", description]],
            ["id", "created_by"],
        ),
    )
    # Only the script's own marks count: anyone may create an entry with this description.
    script_user = _creator(next((m for m in marks if m.get("id") == mark.get("id")), None))
    if script_user is None or script_user[0] != "ApiUser":
        raise refuse("the site did not record this script as the maker of its used mark")
    first = min((int(m["id"]) for m in marks if _creator(m) == script_user), default=None)
    if first != int(mark["id"]):
        raise refuse("it was already used by another job (a ticket is single-use)", login)
    logger.info(
        "Farm ticket #%s checked on %s: created by %s; script %s acts as %s.",
        ticket_id,
        site,
        login,
        script_name,
        login,
    )
    return ScriptCredential(site, script_name, key, source="verified", sudo_as_login=login)


# -- private -------------------------------------------------------------------------------------


def _base_environment(site: str, purpose: str) -> dict[str, str]:
    return {
        SITE_VARIABLE: site,
        JOB_VARIABLE: "1",
        NON_INTERACTIVE_VARIABLE: "1",
        PURPOSE_VARIABLE: purpose,
    }


def _creator(entry: Any) -> Optional[tuple[str, int]]:
    """``(type, id)`` of an entry's ``created_by``, or ``None``."""
    creator = entry.get("created_by") if isinstance(entry, dict) else None
    if not isinstance(creator, dict) or not isinstance(creator.get("id"), int):
        return None
    return str(creator.get("type")), creator["id"]


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


def _parse_ticket(raw: str) -> tuple[int, Secret]:
    ticket_id, _, nonce = raw.partition(":")
    if not ticket_id.isdigit() or len(ticket_id) > 18 or not (20 <= len(nonce) <= 128):
        raise FarmIdentityError(
            f"{TICKET_VARIABLE} is not a farm ticket (<id>:<nonce>): submit the job again with "
            "sgconnect.farm.verified_job_environment()."
        )
    if not all(c.isalnum() or c in "-_" for c in nonce):
        raise FarmIdentityError(
            f"{TICKET_VARIABLE} holds characters a ticket's nonce never has: submit the job again."
        )
    return int(ticket_id), Secret(nonce)


def _service_call(site: str, script_name: str, call: Any) -> Any:
    """Run one api3 call of the ticket check, with a typed error for a refused script."""
    from .service import refused_script_error

    try:
        return call()
    except SgConnectError:
        raise
    except Exception as exc:
        typed = refused_script_error(exc, site, script_name, None)
        if typed is None:
            raise
        raise typed from None
