"""Label selectors: which devices an operator means, in the syntax Kubernetes made familiar.

``site=berlin,hw!=pi3`` matches devices whose ``site`` label is ``berlin`` and whose ``hw`` label
is anything but ``pi3`` (a missing label counts as "not pi3"). ``site in (berlin, paris)`` and
``site notin (rome)`` test a set; a bare ``gpu`` asks for the label to exist, ``!gpu`` for it to be
absent. Clauses are joined by commas and must all hold. The empty selector matches every device.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..exceptions import SelectorError

# Label keys and values: what a shell user can type without quoting, and what MQTT topics and
# file names tolerate.
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-/]*"
LABEL_PATTERN = rf"^{_NAME}$"
_CLAUSE = re.compile(
    rf"""\s*(?:
        (?P<key>{_NAME})\s*(?P<op>==|=|!=)\s*(?P<value>{_NAME})
      | (?P<set_key>{_NAME})\s+(?P<set_op>in|notin)\s*\((?P<values>[^()]*)\)
      | (?P<negated>!)?\s*(?P<exists>{_NAME})
    )\s*(?:,|$)""",
    re.VERBOSE,
)
_VALUE = re.compile(LABEL_PATTERN)


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # one of "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator in ("=", "in"):
            return value in self.values
        if self.operator in ("!=", "notin"):
            return value not in self.values
        return (value is not None) == (self.operator == "exists")


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...]
    text: str

    @classmethod
    def parse(cls, text: str | None) -> Selector:
        text = (text or "").strip()
        requirements: list[Requirement] = []
        position = 0
        while position < len(text):
            match = _CLAUSE.match(text, position)
            if match is None or match.end() == position:
                raise SelectorError(
                    f"selector {text!r}: cannot parse at character {position + 1} "
                    f"({text[position:]!r}); expected key=value, key!=value, "
                    "key in (a,b), key notin (a,b), key or !key"
                )
            requirements.append(_requirement(match, text))
            position = match.end()
        return cls(tuple(requirements), text)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.requirements)


def _requirement(match: re.Match[str], text: str) -> Requirement:
    if match["key"]:
        operator = "!=" if match["op"] == "!=" else "="
        return Requirement(match["key"], operator, frozenset([match["value"]]))
    if match["set_key"]:
        values = [value.strip() for value in match["values"].split(",")]
        if not all(_VALUE.match(value) for value in values):
            raise SelectorError(
                f"selector {text!r}: the set of {match['set_key']!r} must be label values "
                "separated by commas"
            )
        return Requirement(match["set_key"], match["set_op"], frozenset(values))
    return Requirement(match["exists"], "!exists" if match["negated"] else "exists")
