"""The heuristic signals of one record in plain per-record Python: the readable definition
of every signal, the baseline of bench/quality.py, and the oracle the vectorized
implementation (signals.py) is tested against. Not used on the pipeline's hot path."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from schemas.turns import is_prompt_only
from transforms.quality import _defs as D

_WORD = re.compile(D.WORD_RE)
_URL = re.compile(D.URL_RE)
_REFUSAL = re.compile(D.REFUSAL_RE)
_SENTENCE = re.compile(D.SENTENCE_RE)
_AI_IDENTITY = re.compile(D.AI_IDENTITY_RE)
_PRINCIPLED = re.compile(D.PRINCIPLED_REASON_RE)
_CODE = re.compile(D.CODE_RE)
_MATH = re.compile(D.MATH_RE)
_BOILER = re.compile(D.BOILERPLATE_RE)
_PLACEHOLDER = re.compile(D.PLACEHOLDER_RE)
_DANGLING = re.compile(D.DANGLING_END_RE)
_PII = {k: re.compile(v) for k, v in D.PII_PATTERNS.items()}
_CARD = re.compile(D.CARD_CANDIDATE_RE)
_IP_CAND = re.compile(D.IP_CANDIDATE_RE)
_IP_FULL = re.compile(D.IP_FULL_RE)
_LEAD = re.compile("^[^0-9]")
_WS_SET = set(D.WS_CHARS)


def split_texts(messages: Sequence[Mapping[str, Any]]) -> tuple[str, str, str]:
    """(prompt, response, all): user turns, assistant turns, every turn; joined by TURN_SEP."""
    prompt = D.TURN_SEP.join(m["content"] or "" for m in messages if m["role"] in D.PROMPT_ROLES)
    response = D.TURN_SEP.join(m["content"] or "" for m in messages
                               if m["role"] in D.RESPONSE_ROLES)
    every = D.TURN_SEP.join(m["content"] or "" for m in messages)
    return prompt, response, every


def _top_ngram_frac(words: list[str], n: int, total: int) -> float:
    counts = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    best = max(((c, sum(len(w) for w in g)) for g, c in counts.items() if c >= 2), default=None)
    if best is None or total == 0:
        return 0.0
    return min(1.0, best[0] * best[1] / total)


def _dup_ngram_frac(words: list[str], n: int, total: int) -> float:
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    covered = [False] * len(words)
    for i, g in enumerate(grams):
        if counts[g] >= 2:
            for j in range(i, i + n):
                covered[j] = True
    if total == 0:
        return 0.0
    return sum(len(w) for w, c in zip(words, covered, strict=False) if c) / total


def record_signals(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Every heuristic signal (q_*) of one conversation."""
    prompt, response, every = split_texts(messages)
    out: dict[str, Any] = {}
    pw = len(_WORD.findall(prompt))
    rw = len(_WORD.findall(response))
    out["q_prompt_chars"] = len(prompt)
    out["q_response_chars"] = len(response)
    out["q_prompt_words"] = pw
    out["q_response_words"] = rw
    out["q_resp_prompt_ratio"] = rw / max(pw, 1)

    lines = [ln.strip(D.WS_CHARS) for ln in response.split("\n")]
    lines = [ln for ln in lines if ln]
    out["q_dup_line_frac"] = (len(lines) - len(set(lines))) / len(lines) if lines else 0.0

    words = _WORD.findall(response.lower())
    total = sum(len(w) for w in words)
    for n in D.TOP_NGRAMS:
        out[f"q_top{n}gram_frac"] = _top_ngram_frac(words, n, total)
    for n in D.DUP_NGRAMS:
        out[f"q_dup{n}gram_frac"] = _dup_ngram_frac(words, n, total)

    nonws = sum(1 for ch in response if ch not in _WS_SET)
    alnum = sum(1 for ch in response if unicodedata.category(ch)[0] in "LN")
    upper = sum(1 for ch in response if ch.isupper())
    out["q_non_alnum_frac"] = (nonws - alnum) / max(nonws, 1)
    out["q_upper_frac"] = upper / max(nonws, 1)
    out["q_url_count"] = len(_URL.findall(response))
    out["q_refusal"], out["q_refusal_principled"] = _refusals(response)
    out["q_boilerplate"] = len(_BOILER.findall(response))

    stripped = response.strip(D.WS_CHARS)
    out["q_empty"] = stripped == ""
    out["q_placeholder"] = bool(_PLACEHOLDER.search(stripped)) and stripped != ""
    out["q_unbalanced_fence"] = response.count(D.FENCE) % 2 == 1
    out["q_truncated"] = out["q_unbalanced_fence"] or bool(_DANGLING.search(stripped))
    out["q_no_terminal_punct"] = stripped != "" and stripped[-1] not in D.TERMINAL_CHARS
    out["q_prompt_eq_response"] = stripped != "" and \
        prompt.strip(D.WS_CHARS).lower() == stripped.lower()
    out["q_kind"] = ("code" if _CODE.search(response) else "math"
                     if len(_MATH.findall(response)) >= D.MATH_MIN else "prose")

    letters = 0
    per_script = dict.fromkeys(D.SCRIPTS, 0)
    for ch in every:
        if unicodedata.category(ch)[0] != "L":
            continue
        letters += 1
        cp = ord(ch)
        for name, ranges in D.SCRIPTS.items():
            if any(lo <= cp <= hi for lo, hi in ranges):
                per_script[name] += 1
                break
    other = letters - sum(per_script.values())
    for name, count in per_script.items():
        out[f"q_script_{name}"] = count / letters if letters else 0.0
    out["q_script_other"] = other / letters if letters else 0.0
    if letters == 0:
        out["q_script"] = "none"
    else:
        ranked = [*per_script.items(), ("other", other)]
        best = max(c for _, c in ranked)
        out["q_script"] = next(name for name, c in ranked if c == best)

    for kind, pattern in _PII.items():
        out[f"q_pii_{kind}"] = len(pattern.findall(every))
    ips = [_LEAD.sub("", c) for c in _IP_CAND.findall(every)]
    out["q_pii_ip"] = sum(1 for c in ips if _IP_FULL.search(c))
    cards = [re.sub("[^0-9]", "", c) for c in _CARD.findall(every)]
    out["q_pii_credit_card"] = sum(1 for c in cards if D.luhn_ok(c))
    if is_prompt_only(messages):  # no response yet: its signals are unknown, not zero
        out.update({k: None for k in out if not k.startswith(D.PROMPT_SIGNAL_PREFIXES)})
    return out


def _refusals(response: str) -> tuple[int, int]:
    """(refusal markers outside principled refusals, principled refusal sentences): a
    sentence with a marker, a privacy/safety/legal/ethical reason and no "as an AI"."""
    markers = principled = 0
    for sentence in _SENTENCE.findall(response):
        found = len(_REFUSAL.findall(sentence))
        if found and _PRINCIPLED.search(sentence) and not _AI_IDENTITY.search(sentence):
            principled += 1
        else:
            markers += found
    return markers, principled
