"""Named field maps for common public datasets (`sources.N.preset`), and the text of
`refinery layouts`: every layout with the fields that select it, and every preset; the
console lines naming files with rows of no known layout and the fix."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    """A layout and a field map (canonical field → the dataset's field) for one dataset."""

    layout: str
    about: str
    field_map: dict[str, str] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "alpaca": Preset("alpaca", "tatsu-lab/alpaca, Code Alpaca: instruction, input, output"),
    "alpaca_eval": Preset("alpaca", "AlpacaEval: instruction, output (a reference answer)"),
    "dolly": Preset("dolly", "databricks-dolly-15k: instruction, context, response, category"),
    "gsm8k": Preset("qa", "GSM8K: question, answer (steps, '#### N')"),
    "math": Preset("qa", "MATH / MATH-500: problem, solution, answer (kept in meta.answer)"),
    "humaneval": Preset("qa", "HumanEval: prompt → canonical_solution",
                        {"question": "prompt", "answer": "canonical_solution"}),
    "mbpp": Preset("mbpp", "MBPP (full: text, code, test_list; sanitized: prompt, code, "
                           "test_list): the tests join the prompt, the code is the answer"),
    "truthfulqa": Preset("qa", "TruthfulQA (CSV: Question, Best Answer, ...; HF: question, "
                               "best_answer)", {"question": "question", "answer": "best_answer"}),
    "mt_bench": Preset("mt_bench", "MT-Bench questions: question_id, category, turns "
                                   "(prompts only, answered turn by turn)"),
    "arena_hard": Preset("mt_bench", "Arena-Hard questions: turns [{content}] (prompts only)"),
    "ifeval": Preset("prompt", "IFEval: prompt (+ instruction_id_list, kwargs kept in "
                               "meta.extra; prompts only)"),
    "hh_rlhf": Preset("preference", "Anthropic HH-RLHF: chosen, rejected transcripts"),
    "rise_problems": Preset("rise_prompt", "the RISE authors' problem file (kaishxu/RISE "
                                           "data/train/self-sample-qwen2.jsonl): instruction "
                                           "(their chat prompt) → the question, answer → gold"),
    "compound_qa": Preset("qa", "Compound-QA (CQ-Syn authors' data): ID, context, com_question, "
                                "com_reference (context in meta.context, ID in meta.extra)",
                          {"question": "com_question", "answer": "com_reference"}),
}

LAYOUT_FIELDS_HELP: dict[str, str] = {
    "openai": "messages [{role, content}] (content parts, tool calls)",
    "sharegpt": "conversations | conversation [{from|role, value|content}], system",
    "preference": "chosen, rejected (+ prompt): strings, message lists or Human:/Assistant: "
                  "transcripts",
    "dolly": "instruction, response (+ context, category)",
    "alpaca": "instruction, output (+ input, system); or instruction, instances [{input, "
              "output}] (seed tasks: the first instance, the others kept in meta.extra)",
    "mbpp": "code + text | prompt (+ test_list)",
    "qa": "question/answer, problem/solution, query/response, question/response, "
          "prompt/completion, question/best_answer, prompt/response, input/output",
    "mt_bench": "turns [str | {content}] (prompts only)",
    "prompt": "instruction | prompt | question | query | problem without a response "
              "(+ input | context, system; prompts only)",
    "text": "text as the prompt (only when set explicitly; prompts only)",
    "rise_prompt": "instruction (a RISE chat prompt with the assistant prefill), answer "
                   "(only when set explicitly: preset rise_problems)",
}


def describe() -> str:
    """The text printed by `refinery layouts`."""
    lines = ["Layouts (detected per file from its first rows, and per row when a row's own",
             "fields say another one; field names match in any case: 'Best Answer' = best_answer):"]
    lines += [f"  {name:<11} {fields}" for name, fields in LAYOUT_FIELDS_HELP.items()]
    lines += ["", "Presets (sources.N.preset=NAME sets layout and field_map):"]
    for name, p in PRESETS.items():
        mapped = f"  field_map {p.field_map}" if p.field_map else ""
        lines.append(f"  {name:<11} layout {p.layout:<10} {p.about}{mapped}")
    lines += ["", "Override on a source: {path: F, layout: alpaca, field_map: {instruction: ask, "
              "output: reply}}", "or on the command line: --set sources.0.preset=mbpp"]
    return "\n".join(lines) + "\n"


def layout_problems(entries: Iterable[Mapping[str, Any]], limit: int = 12) -> list[str]:
    """One console line per file with rows of no known layout (from dead-letter entries):
    how many, the fields seen, and the fix."""
    files: dict[str, tuple[int, set[str]]] = {}
    for e in entries:
        if e.get("stage") != "ingest" or "cannot detect the layout" not in str(e.get("error")):
            continue
        count, fields = files.get(str(e.get("file")), (0, set()))
        try:
            raw = json.loads(e.get("raw") or "")
        except (TypeError, ValueError):
            raw = None
        if isinstance(raw, dict):
            fields.update(map(str, raw))
        files[str(e.get("file"))] = (count + 1, fields)
    lines = []
    for path, (count, fields) in sorted(files.items()):
        seen = sorted(fields)
        shown = ", ".join(seen[:limit]) + (", ..." if len(seen) > limit else "")
        lines.append(f"{path}: {count} row(s) with no known layout (fields seen: {shown or '-'}); "
                     "fix: set `layout` (and `field_map`) or `preset` on its source, e.g. "
                     "--set sources.0.preset=NAME (`refinery layouts` lists them)")
    return lines
