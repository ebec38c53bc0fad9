"""Test-only speed-up of Beam's pipeline construction: remember each DoFn's state and timer
specs.

Beam 2.77 finds a DoFn's state and timer specs (`userstate.get_dofn_specs`) by taking
`inspect.signature` of every method of the DoFn, and asks again for the same DoFn at each step
of building, translating and running a pipeline: thousands of times for one DedupStage, a
third of a small pipeline test's time. The answer is a pure function of the DoFn, so it is
kept per DoFn object (held weakly: a new object at a reused address is asked afresh). Errors
are not cached: a DoFn with duplicate parameters raises on every call, as before."""

from __future__ import annotations

import weakref
from typing import Any

_PATCHED = False


def remember_dofn_specs() -> None:
    """Wrap `apache_beam.transforms.userstate.get_dofn_specs` (and the modules that imported it
    by name) with a per-object cache. Idempotent."""
    global _PATCHED
    if _PATCHED:
        return
    from apache_beam.runners.direct import transform_evaluator
    from apache_beam.transforms import userstate

    original = userstate.get_dofn_specs
    cache: dict[int, tuple[weakref.ref, Any]] = {}

    def get_dofn_specs(dofn: Any) -> Any:
        key = id(dofn)
        hit = cache.get(key)
        if hit is not None and hit[0]() is dofn:
            states, timers = hit[1]
            return set(states), set(timers)  # callers get their own sets, as before
        result = original(dofn)
        try:
            ref = weakref.ref(dofn, lambda _, key=key: cache.pop(key, None))
        except TypeError:  # an object without weak references: not cached
            return result
        cache[key] = (ref, (frozenset(result[0]), frozenset(result[1])))
        return result

    userstate.get_dofn_specs = get_dofn_specs
    transform_evaluator.get_dofn_specs = get_dofn_specs
    _PATCHED = True
