"""Definitions shared by the vectorized signals (signals.py) and the per-record reference
(reference.py): which texts are read, what a word/line is, the regexes and script ranges.

Every regex here is written in the common subset of Python `re` and Rust `regex` (polars):
no look-around, explicit character classes, so both engines find the same matches.
"""

from __future__ import annotations

# Whitespace: an explicit set (Python's str.isspace and Rust's char::is_whitespace differ).
WS_CHARS = (" \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
            "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
WS_CLASS = "[" + WS_CHARS + "]"
WORD_RE = "[^" + WS_CHARS + "]+"  # a word: a maximal run of non-whitespace characters

PROMPT_ROLES = ("user",)  # prompt text: user turns joined by TURN_SEP
RESPONSE_ROLES = ("assistant",)  # response text: assistant turns joined by TURN_SEP
# Signals that do not need a response (the rest are null on prompt-only rows).
PROMPT_SIGNAL_PREFIXES = ("q_prompt_", "q_script", "q_pii_")
TURN_SEP = "\n\n"  # the "all" text (script, PII) joins every turn's content with it

TOP_NGRAMS = (2, 3, 4)  # q_top{n}gram_frac: share of word chars in the most frequent n-gram
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)  # q_dup{n}gram_frac: share of word chars in repeated n-grams

URL_RE = "(?:https?://|www\\.)[^" + WS_CHARS + "<>\"']+"

# Refusal / boilerplate markers, matched case-insensitively anywhere in the response.
# "help" only as an offer of help ("I can't help but smile" is no refusal)
_HELP = "(?:help(?: you| with| on| me|[.!,]|$)|assist|provide|fulfil|fulfill|comply|do that|answer|complete|create|write)"
_AI_IDENTITY = "as an ai(?: language)? model|as a language model|i am an ai\\b"
REFUSAL_RE = (
    "(?i)(?:" + _AI_IDENTITY + "|"
    "i cannot " + _HELP + "|i can['’]t " + _HELP + "|i(?: am|'m|’m) (?:not able|unable) to "
    + _HELP + "|i(?: am|'m|’m) sorry,? but|i apologi[sz]e|my apologies|"
    "i (?:do not|don['’]t) have (?:the ability|access|personal))"
)
# A refusal is kept when the sentence that declines names a privacy, safety, legal or ethical
# reason and does not speak "as an AI": declining to give a person's address for privacy's sake
# is behaviour instruction data should teach (Alpaca's seed_task_115), unlike "As an AI
# language model, I cannot ..." or declining for want of ability or input. q_refusal counts the
# markers outside such sentences; q_refusal_principled counts the sentences (a filter on it
# drops those refusals too). Sentences: runs of text between . ! ? and line breaks.
SENTENCE_RE = "[^.!?\\n]+"
AI_IDENTITY_RE = "(?i)(?:" + _AI_IDENTITY + ")"
PRINCIPLED_REASON_RE = (
    "(?i)\\b(?:privacy|private (?:information|data|details)|confidential|harmful|harm\\b|"
    "illegal|unlawful|unethical|unsafe|dangerous|safety|offensive|hateful|discriminatory|"
    "copyright(?:ed)?|violen(?:t|ce))"
)
BOILERPLATE_RE = (
    "(?i)(?:i hope (?:this|that) helps|feel free to (?:ask|reach out)|"
    "as of my (?:last )?(?:knowledge|training) (?:update|cutoff)|let me know if you (?:have|need)|"
    "it is important to note that|it's important to note that|in conclusion,)"
)
# Whole-response placeholders (after stripping whitespace), case-insensitive.
PLACEHOLDER_RE = (
    "(?i)^(?:n/?a|none|null|nan|nil|todo|tbd|tba|\\.\\.\\.|…|-+|\\?+|<no ?output>|<noinput>|"
    "no output|no answer|placeholder|\\[placeholder\\]|lorem ipsum.*|your answer here|"
    "answer here|insert answer here)$"
)
FENCE = "```"
# Kind of response (q_kind), for filters calibrated per kind (math and code solutions repeat
# phrases by nature): "code" when a fence or a code-like line start occurs, else "math" when
# at least MATH_MIN math marks (LaTeX commands, $, GSM8K's <<a*b=c>> and ####, digit-operator-
# digit) occur, else "prose".
CODE_RE = ("(?m)```|^[ \t]*(?:def |class |import |from [A-Za-z_.]+ import |return\\b|"
           "#include|public |function |const |let |var )")
MATH_RE = ("\\\\(?:frac|dfrac|boxed|sqrt|cdot|times|le|ge|pi|left|right)|\\$|<<[^>]*>>|####|"
           "[0-9][ \t]*[-+*/×÷=][ \t]*[0-9]")
MATH_MIN = 2
TEXT_KINDS = ("prose", "math", "code")
# Truncation: the response (stripped) ends with a dangling mark or function word.
DANGLING_END_RE = (
    "(?i)(?:[,:\\-–—(\\[{\\\\&+=]|(?:^|" + WS_CLASS + ")(?:and|or|the|of|to|with|for|that|which|"
    "because|but))$"
)
TERMINAL_CHARS = ".!?。！？…\"'”’)]}>*`$"  # q_no_terminal_punct: last char not one of these

# Scripts: inclusive code point ranges; a character counts for a script when it is a letter
# (Unicode category L*) inside one of its ranges. Order breaks ties for q_script.
SCRIPTS: dict[str, tuple[tuple[int, int], ...]] = {
    "latin": ((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x1E00, 0x1EFF)),
    "cjk": ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF)),
    "cyrillic": ((0x400, 0x52F),),
    "arabic": ((0x600, 0x6FF), (0x750, 0x77F)),
    "greek": ((0x370, 0x3FF),),
    "devanagari": ((0x900, 0x97F),),
    "hebrew": ((0x590, 0x5FF),),
}
# Character classes on the Rust side; the reference tests Unicode categories instead:
# letter = category L*, alphanumeric = L* or N*, uppercase = str.isupper (Uppercase property).
NON_LETTER_CLASS = "[^\\p{L}]"
NON_ALNUM_CLASS = "[^\\p{L}\\p{N}]"
UPPER_RE = "\\p{Uppercase}"
WS_CHARS_NEG = "[^" + WS_CHARS + "]"  # used to count whitespace as "delete the rest"


def script_class(script: str, negated: bool = False) -> str:
    """Rust regex class of the letters inside the script's ranges (or its complement)."""
    ranges = "".join(f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in SCRIPTS[script])
    if negated:
        return f"[\\P{{L}}[^{ranges}]]"
    return f"[\\p{{L}}&&[{ranges}]]"


# PII. Credit-card candidates are checked with Luhn before they count or get redacted.
PII_PATTERNS: dict[str, str] = {
    "email": "[A-Za-z0-9._%+\\-]+@[A-Za-z0-9\\-]+(?:\\.[A-Za-z0-9\\-]+)*\\.[A-Za-z]{2,}",
    "phone": "(?:\\+[0-9]{1,3}[ .\\-]?)?(?:\\([0-9]{3}\\)|\\b[0-9]{3})[ .\\-][0-9]{3}[ .\\-]"
             "[0-9]{4}\\b",
    "api_key": "(?:sk-[A-Za-z0-9_\\-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|"
               "xox[abprs]-[A-Za-z0-9\\-]{10,}|AIza[0-9A-Za-z_\\-]{35}|"
               "-----BEGIN [A-Z ]*PRIVATE KEY-----)",
}
# IPv4: a run of digits and dots not preceded by a digit or dot, which must be exactly four
# octets (an optional sentence-final dot allowed) once its leading character is removed.
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IP_CANDIDATE_RE = "(?:^|[^0-9.])[0-9]{1,3}(?:\\.[0-9]{1,3}){3}[0-9.]*"
IP_FULL_RE = "^(?:" + _OCTET + "\\.){3}" + _OCTET + "\\.?$"
CARD_CANDIDATE_RE = "\\b(?:[0-9][ \\-]?){12,18}[0-9]\\b"
REDACT_TOKENS = {"email": "[EMAIL]", "phone": "[PHONE]", "ip": "[IP]",
                 "credit_card": "[CREDIT_CARD]", "api_key": "[API_KEY]"}


def luhn_ok(digits: str) -> bool:
    """Luhn checksum of a digit string (separators already removed)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
