"""pytest plugin: local ShotGrid sites as fixtures.

Registered through the ``pytest11`` entry point ``sgconnect``, so any project that installs
tk-multi-sgconnect gets:

- ``local_site``: a started ``default``-mode :class:`~sgconnect.testing.LocalSite`;
- ``make_local_site(**kwargs)``: a factory of started sites; every site it made is stopped after
  the test;
- ``fresh_sgconnect``: ``sgconnect.reset()`` before and after the test (no standalone broker, no
  user handed down by a launcher). Not autouse: request it, or make it autouse in a conftest::

      @pytest.fixture(autouse=True)
      def _fresh(fresh_sgconnect):
          yield
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, List

import pytest


@pytest.fixture
def make_local_site() -> Iterator[Callable[..., Any]]:
    """A factory: ``make_local_site(mode="saml2", ...)`` returns a started ``LocalSite``."""
    from .site import LocalSite

    sites: List[LocalSite] = []

    def factory(*args: Any, **kwargs: Any) -> LocalSite:
        site = LocalSite(*args, **kwargs)
        sites.append(site)
        return site.start()

    try:
        yield factory
    finally:
        for site in reversed(sites):
            site.stop()


@pytest.fixture
def local_site(make_local_site: Callable[..., Any]) -> Any:
    """A started ``default``-mode :class:`~sgconnect.testing.LocalSite` for this test."""
    return make_local_site("default")


@pytest.fixture
def fresh_sgconnect() -> Iterator[None]:
    """The test starts and ends with no resolved credential and no handed-down user."""
    import sgconnect

    sgconnect.reset()
    yield
    sgconnect.reset()
