"""Start-up of `edgewise score`: the packages that load their names lazily still give every
public name, and the score path does not import what only other commands need."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PUBLIC_NAMES = """
import importlib, json, sys
package = importlib.import_module(sys.argv[1])
missing = [name for name in package.__all__ if getattr(package, name, None) is None]
print(json.dumps({"missing": missing, "dir": dir(package) == sorted(package.__all__)}))
"""

#: What `edgewise score` imports, in the order the command runs them, and what the
#: verification of `--trust` imports on top.
SCORE_PATH = """
import json, os, sys
import edgewise.cli.score, edgewise.model, edgewise.scoring
if sys.argv[1] == "trust":
    from edgewise.trust import TrustClient
print(json.dumps(sorted(sys.modules)))
"""

#: Modules only other commands (or the signing side of trust) need: each costs start-up.
#: (python-tuf imports tempfile itself, so only the unsigned path can go without it.)
NOT_ON_UNSIGNED_PATH = ["tempfile", "random"]
NOT_ON_SCORE_PATH = [
    # The native engine hands scores back as Arrow columns: numpy's import was a quarter of
    # start-up. (onnxruntime's path and `Model.predict`'s callers still use it.)
    "numpy",
    "onnx",
    "pandas",
    "rich",
    "sklearn",
    "edgewise.compile",
    "edgewise.profiles",
    "edgewise.trust.keys",
    "edgewise.trust.repository",
    "edgewise.trust.operators",
    "tuf.repository",
]


def run_python(code: str, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize("package", ["edgewise", "edgewise.trust"])
def test_every_public_name_loads(package):
    result = json.loads(run_python(PUBLIC_NAMES, package))
    assert result == {"missing": [], "dir": True}


def test_an_unknown_name_is_an_attribute_error():
    import edgewise.trust

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        edgewise.trust.nothing  # noqa: B018


@pytest.mark.parametrize("path", ["unsigned", "trust"])
def test_score_path_imports_only_what_scoring_needs(path):
    loaded = set(json.loads(run_python(SCORE_PATH, path)))
    assert {"edgewise._core", "click"} <= loaded  # the check itself works
    unwanted = NOT_ON_SCORE_PATH + (NOT_ON_UNSIGNED_PATH if path == "unsigned" else [])
    assert [name for name in unwanted if name in loaded] == []
