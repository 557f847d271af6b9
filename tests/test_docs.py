"""The documents against what they describe: a moved section or file must not leave a dead link, and a
changed default must not leave the documents giving the old one."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "model" / "report").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(document: Path) -> set[str]:
    """GitHub's ids for a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", document.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: str(d.relative_to(ROOT)))
def test_relative_links_and_their_anchors_resolve(document):
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked here, the machines are offline
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        assert linked.exists(), f"{document.name}: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{document.name}: {target}"


# The environment variables whose defaults are the app's own (app/__init__.py, DEFAULTS): the tables
# of README.md and docs/api.md and the OpenAPI description repeat them for readers, the code is the source.
APP_DEFAULTS = {"MAX_UPLOAD_BYTES": "MAX_CONTENT_LENGTH", "MAX_IMAGE_PIXELS": "MAX_IMAGE_PIXELS",
                "UPLOAD_SECONDS": "UPLOAD_SECONDS", "TRUSTED_PROXIES": "TRUSTED_PROXIES", "RATE_LIMIT": "RATE_LIMIT",
                "MODEL_PATH": "MODEL_PATH", "LOCATOR_PATH": "LOCATOR_PATH", "DRAWING_MODEL_PATH": "DRAWING_MODEL_PATH",
                "MODEL_THREADS": "MODEL_THREADS"}


def as_documented(value) -> str:
    """A default as the tables write it: a path from the repository's root, a number as Python prints it."""
    if isinstance(value, str) and value.endswith(".tflite"):
        return f"`{Path(value).relative_to(ROOT)}`"
    if value == "":
        return "(none)"
    return f"{value:g}" if isinstance(value, float) else str(value)


@pytest.mark.parametrize("document", [ROOT / "README.md", ROOT / "docs" / "api.md"], ids=lambda d: d.name)
def test_the_settings_tables_give_the_apps_own_defaults(document):
    from app import DEFAULTS

    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", document.read_text(), flags=re.MULTILINE))
    for variable, key in APP_DEFAULTS.items():
        assert rows.get(variable) == as_documented(DEFAULTS[key]), \
            f"{document.name} gives {variable}'s default as {rows.get(variable)}; app/__init__.py (DEFAULTS) as {DEFAULTS[key]!r}"


def test_the_shortest_picture_read_is_documented_as_the_pipeline_has_it():
    from model.pipeline import MIN_HEIGHT

    for document in (ROOT / "README.md", ROOT / "docs" / "api.md", ROOT / "app" / "openapi.json"):
        assert f"under {MIN_HEIGHT} pixels tall" in document.read_text(), document.name


def test_the_openapi_description_gives_the_apps_own_limits():
    from app import DEFAULTS

    description = json.loads((ROOT / "app" / "openapi.json").read_text())["paths"]["/predict"]["post"]["description"]
    for variable, per in (("MAX_UPLOAD_BYTES", "request"), ("MAX_IMAGE_PIXELS", "image")):
        said = f"{variable} per {per} (default {DEFAULTS[APP_DEFAULTS[variable]]:,})"
        assert said in description, f"app/openapi.json should say {said!r}, as app/__init__.py (DEFAULTS) has it"
