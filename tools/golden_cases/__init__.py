"""The registry of golden cases. Cases are code: each has a unique id and its
own seed derived from that id, so adding a case never shifts another.

Only `tools/make_goldens.py` builds cases, which needs transformers and torch
(imported inside the builders); the harness imports the registry without them,
to check that the manifest lists exactly the registered cases.
"""

import hashlib

REGISTRY = {}


TIERS = ("default", "large", "extra_large")


class Case:
    def __init__(self, case_id, kind, build, tier):
        self.case_id = case_id
        self.kind = kind
        self.build = build  # build(case) -> Golden (without provenance)
        self.tier = tier

    @property
    def seed(self):
        return seed_for(self.case_id)


def seed_for(name):
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def register(case_id, kind, build, tier="default"):
    if tier not in TIERS:
        raise ValueError(f"golden case '{case_id}': tier {tier!r} is not one of {TIERS}.")
    if case_id in REGISTRY:
        raise ValueError(f"golden case id '{case_id}' is registered twice.")
    if not case_id.replace("-", "_").replace("_", "a").isalnum():
        raise ValueError(f"golden case id '{case_id}' must use letters, digits, '_' and '-'.")
    REGISTRY[case_id] = Case(case_id, kind, build, tier)


def load_all():
    from tools.golden_cases import (  # noqa: F401
        backbone,
        gradients,
        heads,
        pipelines,
        preprocessing,
        presets,
        tokenizer,
        training,
    )

    return REGISTRY
