"""A process with no pip shotgun_api3, only tk-core's ``tank_vendor.shotgun_api3`` (as with tk-core
up to v0.23.6 in a bare DCC interpreter): sgconnect's cached path still connects.

``VENDOR_ROOT`` holds a ``tank_vendor`` package whose ``shotgun_api3`` is the real one (a link);
the top-level name ``shotgun_api3`` cannot be imported.
"""

import json
import os
import sys

sys.modules["shotgun_api3"] = None  # "No module named shotgun_api3", as in a bare interpreter
sys.path.insert(0, os.environ["VENDOR_ROOT"])

import sgconnect  # noqa: E402 - after the import of shotgun_api3 is made impossible
from sgconnect import transport  # noqa: E402

sg = sgconnect.connect("vendored", site=os.environ["SITE_URL"], interactive=False)
print(
    json.dumps(
        {
            "module": transport.shotgun_api3().__name__,
            "projects": len(sg.find("Project", [], ["name"])),
        }
    )
)
