"""A batch's jobs as a graph: ``key`` names a job within its batch, ``after``
names the keys it waits for. The whole graph is checked before anything is
written, and every fault is named at once: duplicate keys, unknown keys, and
the jobs of each cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ValidationError

MAX_KEY = 200


def check_key(value: object, field: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_KEY or not value.isprintable():
        raise ValidationError(f"a key must be 1 to {MAX_KEY} printable characters", field=field)
    return value


def check_after(value: object, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValidationError("after must be a non-empty JSON array of keys of this batch", field=field)
    keys = tuple(check_key(item, f"{field}[{i}]") for i, item in enumerate(value))
    if len(set(keys)) != len(keys):
        raise ValidationError("after names a key twice", field=field)
    return keys


def order(keys: Sequence[str | None], after: Sequence[tuple[str, ...]]) -> None:
    """Refuse a batch whose keys repeat, whose ``after`` names a key no job of
    the batch has, or whose jobs wait for each other in a circle."""
    seen: dict[str, int] = {}
    repeated: list[str] = []
    for i, key in enumerate(keys):
        if key is None:
            continue
        if key in seen:
            repeated.append(key)
        seen.setdefault(key, i)
    if repeated:
        raise ValidationError(
            "keys must be unique within a batch; repeated: " + ", ".join(sorted(set(repeated))),
            field="jobs",
            keys=sorted(set(repeated)),
        )
    unknown = sorted({name for names in after for name in names if name not in seen})
    if unknown:
        raise ValidationError(
            "after names keys no job of this batch has: " + ", ".join(unknown), field="jobs", keys=unknown
        )
    cycles = _cycles(keys, after, seen)
    if cycles:
        named = ["(" + ", ".join(cycle) + ")" for cycle in cycles]
        raise ValidationError(
            "jobs of this batch wait for each other in a circle: " + "; ".join(named), field="jobs", cycles=cycles
        )


def _cycles(keys: Sequence[str | None], after: Sequence[tuple[str, ...]], index: dict[str, int]) -> list[list[str]]:
    """Every strongly connected component with more than one job, or a job
    waiting for itself (Tarjan's algorithm, iterative: a chain of a thousand
    jobs must not exhaust Python's recursion limit)."""
    edges = {key: [name for name in after[i]] for i, key in enumerate(keys) if key is not None}
    number: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in number:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, next_edge = work.pop()
            if next_edge == 0:
                number[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = edges[node]
            if next_edge < len(targets):
                work.append((node, next_edge + 1))
                target = targets[next_edge]
                if target not in number:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], number[target])
                continue
            if low[node] == number[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    found.append(sorted(component, key=lambda key: index[key]))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found
