"""The documentation: every relative link reaches a file (and a heading, for `#anchor` links), every page under
`docs/` is reachable from the README, the README stays short, and no page or docstring cites an issue or a section
of a document the reader does not have."""

import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 200

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...
CITATION = re.compile(r"(?i:\bissue #?\d|\bacceptance \d)|§\s*\d|\bSPEC\b")


def pages() -> list[Path]:
    """README.md and every Markdown file under docs/, k8s/ and load/."""
    found = [README]
    for folder in ("docs", "k8s", "load"):
        found += sorted(p for p in (ROOT / folder).rglob("*.md") if not any(part.startswith(".") for part in p.parts))
    return found


def without_code(markdown: str) -> str:
    """The text outside fenced blocks and code spans: what looks like a link or a heading there is neither."""
    return CODE_SPAN.sub("", FENCE.sub("", markdown))


def links(markdown: str) -> list[str]:
    text = without_code(markdown)
    return INLINE_LINK.findall(text) + REFERENCE_DEFINITION.findall(text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text without markup, lowercase, punctuation dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: Counter[str] = Counter()
    result = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        result.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return result


def resolve(page: Path, target: str) -> tuple[Path, str] | None:
    """The file a relative link points to and its anchor ('' for none); None for external and same-page links."""
    if EXTERNAL.match(target) or target.startswith("#"):
        return None
    path, _, anchor = target.partition("#")
    return (page.parent / unquote(path)).resolve(), unquote(anchor)


def test_every_relative_link_reaches_a_file_and_a_heading() -> None:
    broken = []
    for page in pages():
        name = page.relative_to(ROOT)
        for target in links(page.read_text()):
            if target.startswith("#"):
                if target[1:] not in anchors(page):
                    broken.append(f"{name}: {target} (no such heading)")
                continue
            resolved = resolve(page, target)
            if resolved is None:
                continue
            path, anchor = resolved
            if not path.exists():
                broken.append(f"{name}: {target} (no such file)")
            elif anchor and (path.suffix != ".md" or anchor not in anchors(path)):
                broken.append(f"{name}: {target} (no such heading)")
    assert broken == []


def test_every_page_under_docs_is_reachable_from_the_readme() -> None:
    reached, todo = {README.resolve()}, [README.resolve()]
    while todo:
        page = todo.pop()
        for target in links(page.read_text()):
            resolved = resolve(page, target)
            if resolved is None:
                continue
            path = resolved[0]
            if path.suffix == ".md" and path.is_file() and path not in reached:
                reached.add(path)
                todo.append(path)
    docs = {p.resolve() for p in (ROOT / "docs").rglob("*.md")}
    assert sorted(str(p.relative_to(ROOT)) for p in docs - reached) == []


def test_the_readme_fits_on_a_screen_or_three() -> None:
    assert len(README.read_text().splitlines()) <= README_MAX_LINES


def test_no_page_docstring_or_comment_cites_an_issue_or_a_spec_section() -> None:
    sources = pages()
    for folder in ("services", "tools", "load", "tests"):
        sources += [p for p in (ROOT / folder).rglob("*.py") if not any(part.startswith(".") for part in p.parts)]
    sources.remove(Path(__file__))  # the pattern itself
    citations = [
        f"{source.relative_to(ROOT)}:{number}: {line.strip()}"
        for source in sources
        for number, line in enumerate(source.read_text().splitlines(), start=1)
        if CITATION.search(line)
    ]
    assert citations == []


def test_slugs_follow_githubs_rules() -> None:
    assert slug("The drill: the crash played and measured (`make drill`)") == (
        "the-drill-the-crash-played-and-measured-make-drill"
    )
    assert slug("Public: through the gateway, for anyone") == "public-through-the-gateway-for-anyone"
    assert slug("Settings `make run` passes on") == "settings-make-run-passes-on"
    assert slug("With a cluster, or without one") == "with-a-cluster-or-without-one"
