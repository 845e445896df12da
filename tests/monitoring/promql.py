"""The metric names a PromQL expression reads, found lexically, and the PromQL held by the monitoring files.

No PromQL parser ships with the workspace, so names are found by a small tokenizer: string literals, label
matchers (`{...}`), ranges and subqueries (`[...]`), grouping clauses (`by (...)`, `on (...)`, ...), Grafana
variables (`$__rate_interval`, `${app}`), numbers and durations are dropped, and of the identifiers left, those
that call a function or are PromQL keywords are not metric names. `test_promql.py` checks it against the parse
tree of `promql-parser` where that package is installed.
"""

import re
from collections.abc import Iterator, Mapping
from typing import Any

KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end", "group_left", "group_right"}
)
GROUPING = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)"
TOKEN = re.compile(
    r"""
      (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    | (?P<variable>\$\{[^}]*\}|\$\w+)
    | (?P<number>(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)(?:[a-zA-Z]+\d*)*)
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
GRAFANA_LABEL_VALUES = re.compile(r"^\s*label_values\s*\((?P<selector>.*),\s*[a-zA-Z_]\w*\s*\)\s*$", re.DOTALL)
"""Grafana's variable query `label_values(<series selector>, <label>)`, not PromQL itself."""


def _blank_strings(expr: str) -> str:
    """The expression with string literals and Grafana variables replaced by spaces (so braces inside them and
    `$__rate_interval` inside a range cannot mislead what follows)."""
    out = []
    for match in TOKEN.finditer(expr):
        kind = match.lastgroup
        out.append(" " if kind in {"string", "variable"} else match.group())
    return "".join(out)


def _drop_nested(text: str, opening: str, closing: str) -> str:
    depth, out = 0, []
    for char in text:
        if char == opening:
            depth += 1
        elif char == closing and depth:
            depth -= 1
        elif not depth:
            out.append(char)
    return "".join(out)


def metric_names(expr: str) -> set[str]:
    """Every metric name that `expr` selects, e.g. `{"http_requests_total"}` for
    `sum by (app) (rate(http_requests_total{status=~"5.."}[5m]))`."""
    if (grafana := GRAFANA_LABEL_VALUES.match(expr)) is not None:
        expr = grafana.group("selector")
    text = _blank_strings(expr)
    text = _drop_nested(text, "{", "}")
    text = _drop_nested(text, "[", "]")
    text = re.sub(GROUPING, " ", text)
    names: set[str] = set()
    tokens = [(m.lastgroup, m.group(), m.end()) for m in TOKEN.finditer(text)]
    for kind, value, end in tokens:
        if kind != "ident" or value.lower() in KEYWORDS:
            continue
        if re.match(r"\s*\(", text[end:]):  # a function or an aggregation
            continue
        names.add(value)
    return names


def selectors_without_name(expr: str) -> bool:
    """Whether `expr` has a bare `{...}` selector (no metric name before it), which the name check cannot see."""
    text = _blank_strings(expr)
    return re.search(r"(^|[^\w:\s])\s*\{", _drop_nested(text, "[", "]")) is not None


def dashboard_expressions(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every query of a Grafana dashboard: panels (rows' nested panels too), annotations and
    query variables."""
    panels = list(dashboard.get("panels", []))
    while panels:
        panel = panels.pop(0)
        panels.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            if "expr" in target:
                yield f"panel {panel.get('title')!r} query {target.get('refId')}", target["expr"]
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            yield f"annotation {annotation.get('name')!r}", annotation["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            yield f"variable {variable.get('name')!r}", str(query["query"] if isinstance(query, dict) else query)


def rule_expressions(rules: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every rule of a Prometheus rule file."""
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield f"rule {rule.get('alert') or rule.get('record')!r}", rule["expr"]


def grafana_to_promql(expr: str) -> str:
    """The expression as Prometheus receives it from Grafana: interval variables become durations and the
    dashboard's `$app` variable a regular expression."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    return re.sub(r"\$\{?app\}?", ".*", expr)


def matchers(expr: str) -> list[tuple[str, str, str, str]]:
    """(metric, label, operator, value) of every label matcher of a named selector: `x{a="1", b!~"2"}` gives
    `[("x", "a", "=", "1"), ("x", "b", "!~", "2")]`."""
    if (grafana := GRAFANA_LABEL_VALUES.match(expr)) is not None:
        expr = grafana.group("selector")
    tokens = [(m.lastgroup, m.group()) for m in TOKEN.finditer(expr) if not m.group().isspace()]
    found = []
    for index, (kind, value) in enumerate(tokens):
        if kind != "ident" or index + 1 >= len(tokens) or tokens[index + 1][1] != "{":
            continue
        position = index + 2
        while tokens[position][1] != "}":
            label = tokens[position][1]
            operator = tokens[position + 1][1]
            if tokens[position + 2][1] in {"=", "~"}:  # the tokenizer splits `!=`, `=~` and `!~` in two
                operator += tokens[position + 2][1]
                position += 1
            literal = tokens[position + 2][1]
            found.append((value, label, operator, literal[1:-1]))
            position += 3
            if tokens[position][1] == ",":
                position += 1
    return found


def grouping_labels(expr: str) -> set[str]:
    """The labels named in `by`, `without`, `on`, `ignoring`, `group_left` and `group_right` clauses."""
    text = _blank_strings(expr)
    labels: set[str] = set()
    for clause in re.finditer(GROUPING, text):
        inside = clause.group()[clause.group().index("(") + 1 : -1]
        labels |= {label.strip() for label in inside.split(",") if label.strip()}
    return labels
