"""The spec diff between two versions that the verdict rule and the move work from."""
from __future__ import annotations

from SpiffWorkflow.bpmn.util.diff import SpecDiff

from ..serializer import SERIALIZER

COSMETIC = {"bpmn_name", "documentation", "lane", "description"}


class PairDiff:
    """SpecDiffs between two versions: the top process and every sub-process spec, computed once."""

    def __init__(self, spec1, deps1, spec2, deps2):
        self.registry = SERIALIZER.registry
        self.spec1, self.deps1, self.spec2, self.deps2 = spec1, deps1, spec2, deps2
        self.top = SpecDiff(self.registry, spec1, spec2)
        self.deps: dict[str, SpecDiff | None] = {
            name: (SpecDiff(self.registry, s, deps2[name]) if name in deps2 else None) for name, s in deps1.items()}
        self.new_deps = [n for n in deps2 if n not in deps1]
        self._conv: dict[int, dict] = {}

    def for_spec(self, name: str) -> SpecDiff | None:
        """The diff of the old process spec `name` (None: the new version dropped that sub-process)."""
        return self.top if name == self.spec1.name else self.deps.get(name)

    def new_spec(self, name: str):
        """The new version's process spec called `name`, if it has one."""
        return self.spec2 if name == self.spec2.name else self.deps2.get(name)

    def conv(self, spec) -> dict:
        """The serialized form of a task spec (for comparing decision tables), converted once."""
        key = id(spec)
        if key not in self._conv:
            self._conv[key] = self.registry.convert(spec)
        return self._conv[key]

    def aligned(self, sd: SpecDiff, spec, new_process):
        """The new version's counterpart of an old task spec (by alignment, else by name), or None."""
        if spec in sd.alignment:
            return sd.alignment[spec]
        return new_process.task_specs.get(spec.name) if new_process is not None else None

    def changes(self, sd: SpecDiff, spec) -> list[str]:
        """What changed in a task spec, leaving out labels and documentation (they never block)."""
        return [a for a in sd.comparisons.get(spec) or [] if a not in COSMETIC]
