"""The console's files keep to the rules its Content-Security-Policy enforces, checked on the
source so a violation fails here with a file name rather than as a blank page in a browser."""

from __future__ import annotations

import re
from pathlib import Path

from api.console import CONTENT_SECURITY_POLICY, STATIC_DIR

SCRIPTS = sorted((STATIC_DIR / "js").glob("*.js"))
# Parsing strings as HTML or as code: the two ways user data could become markup or script.
FORBIDDEN_JS = {
    "innerHTML": re.compile(r"\.(inner|outer)HTML\b"),
    "insertAdjacentHTML": re.compile(r"insertAdjacentHTML"),
    "document.write": re.compile(r"document\.write"),
    "eval": re.compile(r"\beval\s*\("),
    "new Function": re.compile(r"new\s+Function\b"),
    "string timer": re.compile(r"set(Timeout|Interval)\(\s*['\"`]"),
    "inline style attribute": re.compile(r"""["']style["']\s*:"""),
}


def test_scripts_never_parse_data_as_html_or_code() -> None:
    assert len(SCRIPTS) >= 8
    found = [
        f"{path.name}: {name}"
        for path in SCRIPTS
        for name, pattern in FORBIDDEN_JS.items()
        if pattern.search(path.read_text())
    ]
    assert not found


def test_the_page_has_no_inline_script_style_or_handler() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts and all('src="/console/' in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+\s*=", html, flags=re.I)
    assert "<style" not in html and "style=" not in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html


def test_nothing_is_loaded_from_another_origin() -> None:
    for path in [*SCRIPTS, STATIC_DIR / "console.css"]:
        text = path.read_text()
        imports = re.findall(r"""from\s+["']([^"']+)["']""", text)
        assert all(spec.startswith("./") for spec in imports), path
        assert "@import" not in text and "url(http" not in text, path
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY


def test_every_module_stays_small() -> None:
    for path in [*SCRIPTS, STATIC_DIR / "console.css"]:
        assert len(path.read_text().splitlines()) <= 400, path


def test_the_package_ships_every_static_file() -> None:
    root = Path(__file__).resolve().parents[2]
    pyproject = (root / "pyproject.toml").read_text()
    depth = {len(p.relative_to(STATIC_DIR).parts) for p in STATIC_DIR.rglob("*") if p.is_file()}
    assert depth <= {1, 2} and '"api.console" = ["static/*", "static/*/*"]' in pyproject
