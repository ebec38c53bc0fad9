"""The generic rule check of a compound item: shape of the question, and each sub-question
answered. (The per-type rules live in type_rules.py.)

Reads: compound question, sub-questions, reference answer, sub-answers, and the seed material
the question was made from (context first). Writes: the failing rules in the order of
QUESTION_RULES and ANSWER_RULES, each with its detail. Pure, no Beam, no model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.text import fold_text

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Function words and question scaffolding: they carry no subject, so they never count as shared.
STOPWORDS = frozenset([
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each",
    "either", "else", "ever", "every", "few", "for", "from", "further", "had", "has", "have",
    "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if",
    "in", "into", "is", "it", "its", "itself", "just", "let", "like", "may", "me", "might",
    "more", "most", "much", "must", "my", "myself", "neither", "no", "nor", "not", "now", "of",
    "off", "on", "once", "one", "only", "or", "other", "ought", "our", "ours", "ourselves",
    "out", "over", "own", "per", "rather", "same", "shall", "she", "should", "so", "some",
    "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there",
    "these", "they", "this", "those", "through", "thus", "to", "too", "under", "until", "up",
    "upon", "us", "very", "was", "we", "were", "what", "whatever", "when", "where", "whether",
    "which", "while", "who", "whom", "whose", "why", "will", "with", "within", "without",
    "would", "yet", "you", "your", "yours", "yourself", "yourselves", "explain", "describe",
    "tell", "give", "list", "name", "say", "state", "please", "briefly", "answer", "question",
    "questions",
])


# First words that make a sentence a question or a task even without a question mark.
QUESTION_STARTS = frozenset([
    "what", "why", "how", "which", "who", "whom", "whose", "when", "where", "whether", "is",
    "are", "was", "were", "do", "does", "did", "can", "could", "should", "would", "will",
    "shall", "may", "might", "has", "have", "had", "explain", "describe", "compare", "list",
    "name", "give", "suggest", "evaluate", "assess", "recommend", "identify", "tell",
])


def is_question(text: str) -> bool:
    """Ends with '?' or starts with an interrogative or task word."""
    stripped = text.strip()
    if stripped.endswith("?"):
        return True
    words = _WORD.findall(fold_text(stripped))
    return bool(words) and words[0] in QUESTION_STARTS


def _stem(word: str) -> str:
    """A deliberately small suffix stripper, applied alike to both sides of every comparison."""
    for suffix, repl, keep in (("ies", "y", 2), ("sses", "ss", 2), ("ches", "ch", 2),
                               ("shes", "sh", 2), ("xes", "x", 2), ("ing", "", 3),
                               ("ed", "", 3), ("ly", "", 3)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep:
            return word[: len(word) - len(suffix)] + repl
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def content_words(text: str) -> set[str]:
    """Stemmed, case-folded words of `text` that are not stopwords (digits always count)."""
    out = set()
    for w in _WORD.findall(fold_text(text)):
        if w in STOPWORDS or (len(w) < 2 and not w.isdigit()):
            continue
        out.add(_stem(w))
    return out


def overlap(part: str, whole: str) -> float:
    """Share of `part`'s content words found in `whole` (0 when `part` has none)."""
    words = content_words(part)
    if not words:
        return 0.0
    return len(words & content_words(whole)) / len(words)


def present_in(sub_question: str, compound_question: str, min_overlap: float) -> bool:
    """Verbatim after folding, or enough of its content words appear in the compound question."""
    folded_sub = fold_text(sub_question)
    if folded_sub and folded_sub in fold_text(compound_question):
        return True
    return bool(content_words(sub_question)) and \
        overlap(sub_question, compound_question) >= min_overlap


# A second ask inside one sentence: ", and where ...", "; how ...", " and why ...".
_JOINED_ASK = re.compile(
    r"(?:[,;:]\s*(?:and|but|or|then|also)\s+|\s(?:and|but)\s+(?:also\s+)?)"
    r"(?:what|why|how|which|who|whom|whose|when|where|whether|to what extent|in what|for how|by whom)\b"
    r"|[;:]\s*(?:what|why|how|which|who|when|where|whether)\b"
    r"|,\s*(?:what|why|how|whether|in what|for how|by whom|to whom|from where)\b"
    r"|[,;]\s*(?:and\s+)?(?:is|are|was|were|do|does|did|can|could|should|would|will|has|"
    r"have)\s+(?:it|they|this|these|there|he|she|we|you|the)\b"
    r"|[,;]\s*(?:and\s+)?(?:explain|describe|identify|list|discuss|suggest|name|give)\b")
# Words by which a later sentence refers back to an earlier one.
_ANAPHORA = frozenset(["it", "its", "they", "them", "their", "theirs", "this", "these", "that",
                       "those", "such", "he", "she", "his", "her", "him", "both", "either",
                       "each", "former", "latter", "there", "then", "so", "also", "other",
                       "same", "above", "further", "additionally", "moreover", "else", "about",
                       "which", "conversely", "following", "based", "given", "considering",
                       "overall", "instead", "otherwise", "likewise", "similarly", "hence",
                       "therefore", "consequently", "accordingly", "thereby", "afterwards",
                       "here", "what's", "any", "specific", "particular", "you", "your"])
# Words by which a later sentence asks for the relation to what came before (its effect, the
# better option, the fix): "What impacts did this have?", "Which offers more?".
_RELATION = re.compile(r"\b(?:impacts?|effects?|consequences?|results?|implications?|"
                       r"outcomes?|influenc\w*|significan\w*|improv\w*|enhanc\w*|"
                       r"recommend\w*|suggest\w*|advantages?|disadvantages?|strengths?|"
                       r"weaknesses|better|more|most|best|prefer\w*|alternative\w*|"
                       r"conversely|instead|differ\w*|compar\w*|contrast\w*|if|assuming|"
                       r"why|reasons?|causes?)\b")
_SENTENCE = re.compile(r"(?<=[?!.])\s+(?=[\"'(\[]?[^\W\d_])")


def question_sentences(question: str) -> list[str]:
    """The sentences of a (compound) question that ask something."""
    parts = [s.strip(" \"'") for s in _SENTENCE.split(question.strip()) if s.strip(" \"'")]
    return [s for s in parts if is_question(s)]


def ask_count(question: str) -> int:
    """How many things the question asks: its question sentences plus the asks joined inside
    one sentence (", and where ...")."""
    sentences = question_sentences(question) or [question]
    return sum(1 + len(_JOINED_ASK.findall(s.lower())) for s in sentences)


def _prefixes(text: str) -> set[str]:
    return {w[:5] for w in content_words(text)}


def _linked(later: str, earlier: list[str], context: set[str]) -> bool:
    """Tied to what came before: a word that refers back, a content word (5-letter prefix)
    shared with an earlier sentence, or one shared with the context."""
    folded = fold_text(later)
    if set(_WORD.findall(folded)) & _ANAPHORA or _RELATION.search(folded):
        return True
    mine = _prefixes(later)
    if len(mine) <= 1:  # "By whom?", "What were the outcomes?": elliptical, leans on the rest
        return True
    return bool(mine & context) or any(mine & _prefixes(e) for e in earlier)


def compound_structure(question: str, context: str | None = None) -> list[dict[str, Any]]:
    """Failures of the compound question's own text: it asks at least two things
    (`question_single_ask`), and its later question sentences are not all loose: a sentence is
    tied when it shares a content word with the context or an earlier sentence, refers back
    with a pronoun, asks for a relation (impact, better, improve, ...), or is elliptical (`question_unrelated_parts`: a list of unrelated
    questions is not a compound question; a list with one loose part is left to the judge)."""
    n = ask_count(question)
    if n < 2:
        return [{"rule": "question_single_ask", "asks": n}]
    sentences = question_sentences(question)
    ctx = _prefixes(context or "")
    loose = [i for i in range(1, len(sentences))
             if not _linked(sentences[i], sentences[:i], ctx)]
    if loose and len(loose) == len(sentences) - 1:  # no later sentence is tied to anything
        return [{"rule": "question_unrelated_parts", "sentences": loose}]
    return []


QUESTION_RULES: tuple[str, ...] = (
    "too_few_sub_questions", "too_many_sub_questions", "duplicate_sub_questions",
    "sub_question_not_a_question", "sub_question_not_grounded", "sub_question_not_in_question",
    "question_single_ask", "question_unrelated_parts")
ANSWER_RULES: tuple[str, ...] = (
    "unanswered_sub_question", "extra_sub_answers", "empty_sub_answer", "sub_answer_off_topic",
    "sub_answer_echoes_question", "answer_omits_sub_answer")


@dataclass(frozen=True)
class RuleResult:
    ok: bool
    reason: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)

    def detail(self) -> dict[str, Any]:
        return {"check": "rule", "failures": self.failures}


@dataclass(frozen=True)
class RuleParams:
    min_sub_questions: int = 2
    max_sub_questions: int = 4
    presence_min_overlap: float = 0.5
    min_shared_words: int = 1
    answer_min_overlap: float = 0.5
    min_seed_words: int = 1


def check_question(compound_question: str, sub_questions: Sequence[str],
                   params: RuleParams, seed_text: str | None = None) -> list[dict[str, Any]]:
    """Failures of the question alone: count, duplicates, each a question, each grounded in the
    seed material (shares `min_seed_words` content words with `seed_text`, when given), each
    present in the compound question; then the compound question's own structure
    (`compound_structure`, with the seed material as its context)."""
    fails: list[dict[str, Any]] = []
    n = len(sub_questions)
    if n < params.min_sub_questions:
        fails.append({"rule": "too_few_sub_questions", "count": n,
                      "min": params.min_sub_questions})
    if n > params.max_sub_questions:
        fails.append({"rule": "too_many_sub_questions", "count": n,
                      "max": params.max_sub_questions})
    seen: dict[str, int] = {}
    for i, sq in enumerate(sub_questions):
        key = fold_text(sq)
        if key in seen:
            fails.append({"rule": "duplicate_sub_questions", "index": i, "same_as": seen[key]})
        seen.setdefault(key, i)
    seed_words = content_words(seed_text) if seed_text is not None else None
    for i, sq in enumerate(sub_questions):
        if not is_question(sq):
            fails.append({"rule": "sub_question_not_a_question", "index": i})
        if seed_words is not None:
            shared = content_words(sq) & seed_words
            if len(shared) < params.min_seed_words:
                fails.append({"rule": "sub_question_not_grounded", "index": i,
                              "shared": sorted(shared)})
    for i, sq in enumerate(sub_questions):
        if not present_in(sq, compound_question, params.presence_min_overlap):
            fails.append({"rule": "sub_question_not_in_question", "index": i,
                          "overlap": round(overlap(sq, compound_question), 3)})
    return fails + compound_structure(compound_question, seed_text)


def check_answers(sub_questions: Sequence[str], answer: str, sub_answers: Sequence[str],
                  params: RuleParams) -> list[dict[str, Any]]:
    """Failures of the answers: one non-empty, on-topic sub-answer per sub-question, each
    carried into the reference answer."""
    fails: list[dict[str, Any]] = []
    if len(sub_answers) < len(sub_questions):
        fails.extend({"rule": "unanswered_sub_question", "index": i}
                     for i in range(len(sub_answers), len(sub_questions)))
    elif len(sub_answers) > len(sub_questions):
        fails.append({"rule": "extra_sub_answers", "count": len(sub_answers),
                      "expected": len(sub_questions)})
    for i, (sq, sa) in enumerate(zip(sub_questions, sub_answers, strict=False)):
        if not sa.strip():
            fails.append({"rule": "empty_sub_answer", "index": i})
            continue
        shared = content_words(sq) & content_words(sa)
        if len(shared) < params.min_shared_words:
            fails.append({"rule": "sub_answer_off_topic", "index": i, "shared": sorted(shared)})
        elif not content_words(sa) - content_words(sq):
            fails.append({"rule": "sub_answer_echoes_question", "index": i})
        if overlap(sa, answer) < params.answer_min_overlap:
            fails.append({"rule": "answer_omits_sub_answer", "index": i,
                          "overlap": round(overlap(sa, answer), 3)})
    return fails


def rule_check(compound_question: str, sub_questions: Sequence[str], answer: str,
               sub_answers: Sequence[str], params: RuleParams | None = None,
               seed_text: str | None = None) -> RuleResult:
    """Every rule at once; the reason is the first failure in the order of the docstring."""
    params = params or RuleParams()
    fails = check_question(compound_question, sub_questions, params, seed_text) + \
        check_answers(sub_questions, answer, sub_answers, params)
    if not fails:
        return RuleResult(ok=True)
    return RuleResult(ok=False, reason=fails[0]["rule"], failures=fails)
