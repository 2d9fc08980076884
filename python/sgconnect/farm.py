"""The submit side of service mode: the secret-free environment a farm job needs.

Run :func:`job_environment` in the submitter (a process logged in as a person: Maya, Nuke, SG
Desktop, a submit script after ``sgconnect login``) and merge its result into the job's
environment. On the farm, the tool just calls ``sgconnect.connect(purpose)``: the job is
non-interactive and has no session, so the chain uses service mode, and the farm's script key
acts as the submitter through ``sudo_as_login``.

What the job gets is a site URL, a login, a purpose and a flag: never a token or a key. The
farm's own environment provides the script name (``SGCONNECT_SERVICE_SCRIPT_NAME``) and the key
(the variable named by ``service_key_env``, from the farm's secret store; or the OS keyring; or a
``chmod 600`` file): configuration, not tool code. See ``docs/farm.md``.
"""

from __future__ import annotations

from typing import Optional

from . import environ
from .service import SITE_VARIABLE, SUDO_VARIABLE, validate_login
from .sites import normalize_site, validate_purpose

__all__ = ["job_environment", "PURPOSE_VARIABLE", "NON_INTERACTIVE_VARIABLE"]

#: The purpose the submitter gave, for the job's own logs and ``connect()`` calls.
PURPOSE_VARIABLE = environ.PURPOSE
#: Forbids prompts in the job (``Settings.non_interactive``).
NON_INTERACTIVE_VARIABLE = environ.NON_INTERACTIVE


def job_environment(purpose: str, site: Optional[str] = None) -> dict[str, str]:
    """The environment variables a farm job needs to act as the current user. No secret.

    :param purpose: What the job does ("render", "publish"), validated like ``connect()``'s.
    :param site: The site; ``None`` for the current user's default site.
    :returns: ``SGCONNECT_SITE``, ``SGCONNECT_SUDO_AS_LOGIN`` (the current user's login),
        ``SGCONNECT_NON_INTERACTIVE`` (``"1"``) and ``SGCONNECT_PURPOSE``. When the current
        user is itself a script acting as nobody, ``SGCONNECT_SUDO_AS_LOGIN`` is left out and the
        job acts as the farm's script.
    :raises InvalidPurposeError: The purpose is empty, too long or has control characters.
    :raises LoginRequiredError: This process has no logged-in user and may not prompt.
    """
    from . import current_user

    purpose = validate_purpose(purpose)
    user = current_user(normalize_site(site) if site else None)
    environment = {
        SITE_VARIABLE: normalize_site(user.site),
        NON_INTERACTIVE_VARIABLE: "1",
        PURPOSE_VARIABLE: purpose,
    }
    acting_as_itself = user.script_name is not None and user.sudo_as_login is None
    if not acting_as_itself:
        environment[SUDO_VARIABLE] = validate_login(user.login)
    return environment
