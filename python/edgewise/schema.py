"""The input schema of a model: which columns it reads, their kinds and what they may hold."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .exceptions import BundleError


@dataclass(frozen=True)
class Column:
    """One input column as the model saw it in training."""

    name: str
    kind: str  # "float", "int", "bool" or "string"
    nullable: bool  # the training data held nulls here
    accepts_missing: bool = False  # the pipeline scores a row whose value here is missing
    categories: list[str] | None = None  # the domain seen in training (string columns)
    accepts_unknown: bool = True  # the pipeline scores values outside `categories`

    def rule(self) -> tuple[str, bool, list[str] | None]:
        """The row check for the core's `InputLayout`."""
        enforced = None if self.accepts_unknown else self.categories
        return (self.name, self.accepts_missing, enforced)


@dataclass(frozen=True)
class InputSchema:
    columns: list[Column] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.columns]

    @classmethod
    def from_json(cls, data: Any) -> InputSchema:
        try:
            return cls([Column(**entry) for entry in data])
        except TypeError as exc:
            raise BundleError(f"malformed input schema in manifest: {exc}") from exc
