"""What a finished TAG-INSTRUCT item becomes: the accepted Example row with its lineage, its
tags, and the detail of a rejected item for rejected/. Pure, over core.py's items."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from schemas.ids import example_id
from schemas.records import example_row
from transforms.tag_instruct import templates
from transforms.tag_instruct.config import TagInstructConfig
from transforms.tag_instruct.core import STAGE, variant
from transforms.tag_instruct.verify import Failure


def reject_detail(item: Mapping[str, Any] | None, failure: Failure, step: str,
                  round_no: int) -> dict[str, Any]:
    """What went wrong and how far the item got, for rejected/."""
    detail: dict[str, Any] = {"round": round_no, "step": step, **failure.detail}
    if item:
        for key in ("tags_before", "tagger_before", "chosen_tag", "chosen_reward", "tags_used"):
            if key in item:
                detail[key] = item[key]
    return detail


def new_example(item: Mapping[str, Any], cfg: TagInstructConfig | None = None
                ) -> dict[str, Any]:
    """The accepted new Example row with its lineage."""
    messages = [{"role": "user", "content": item["question"]},
                {"role": "assistant", "content": item["response"]}]
    models = item["models"]
    model_ids = sorted({m for m in models.values() if m})
    lineage = {"parent_ids": [item["id"]], "stage": STAGE, "method": "tag_instruct",
               "model": ",".join(model_ids) or None,
               "template_version": ";".join(
                   templates.version(s, variant(s, cfg) if cfg else None)
                   for s in templates.STEPS)}
    parent_meta = item["row"].get("meta") or {}
    reward, sim = item.get("chosen_reward"), item.get("similarity_to_original")
    return example_row(
        example_id(messages), messages, source=item["row"].get("source"),
        tags=item_tags(item), category=parent_meta.get("category"), lineage=lineage,
        ti_round=int(item["round"]), ti_root_id=item["root_id"],
        ti_tags_before=list(item["tags_before"]),
        ti_tagger_before=list(item.get("tagger_before") or []),
        ti_tags_used=list(item["tags_used"]), ti_tags_after=list(item.get("tags_after") or []),
        ti_chosen_tag=item["chosen_tag"],
        ti_chosen_reward=None if reward is None else float(reward),
        ti_candidates=json.dumps(item["candidates"], sort_keys=True),
        ti_similarity_to_original=None if sim is None else float(sim),
        ti_models=json.dumps(models, sort_keys=True),
    )


def item_tags(item: Mapping[str, Any]) -> list[str]:
    """The tags of a finished item: the tagger's tags of the new question when the tagger ran,
    else (paper) the compress tags plus the new tag, as their output's `tag` field."""
    if "tags_after" in item:
        return list(item["tags_after"])
    return list(dict.fromkeys([*item["tags_before"], item["chosen_tag"]]))
