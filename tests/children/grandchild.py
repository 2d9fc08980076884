"""What a child program's own child inherits: its environment, as text (JSON)."""

import subprocess
import sys

_DUMP = "import json, os; print(json.dumps(dict(os.environ)))"


def environment_text() -> str:
    """Start a grandchild process; return the JSON of the environment it inherited."""
    done = subprocess.run([sys.executable, "-c", _DUMP], capture_output=True, text=True, check=True)
    return done.stdout
