"""Arithmetic equations inside solution text: find them, evaluate them exactly, render edits.

Reads plain step text (GSM8K `48/2 = <<48/2=24>>24`, plain `3 x 4 = 12`, LaTeX `$3 \\times 4 =
12$`). An `Equation` is one logical equation with one or more *renderings* (the visible text and
the GSM8K calculator annotation are two renderings of the same equation); an edit changes every
rendering alike, so the text stays self-consistent. Values are exact `Fraction`s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

NUM_RE = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_TOKEN = re.compile(
    r"(?P<ann><<(?P<inner>[^<>]*)>>)"
    rf"|(?P<num>(?<![\w.])(?:{NUM_RE})(?![A-Za-z_\d]|\.\d))(?P<pct>%)?"
    r"|(?P<op>\*\*|\\times|\\cdot|\\div|[+\-*/×÷·^−])"
    r"|(?P<xop>(?<=\s)[xX](?=\s))"
    r"|(?P<lp>\()|(?P<rp>\))|(?P<eq>=)"
    r"|(?P<skip>\$|\\[,;!: ]|\s+)"
    r"|(?P<other>\\?[A-Za-z_]+|.)",
    re.S,
)
OP_NORMAL = {"**": "^", "\\times": "*", "\\cdot": "*", "\\div": "/", "×": "*", "÷": "/", "·": "*",
             "−": "-", "x": "*", "X": "*"}
BINARY_OPS = ("+", "-", "*", "/")


@dataclass(frozen=True)
class Tok:
    kind: str  # num | op | lp | rp | eq | ann | skip | other
    text: str
    start: int
    end: int
    value: Fraction | None = None  # numbers: the displayed value
    pct: bool = False  # number followed by '%'
    inner: str = ""  # annotation body

    @property
    def sym(self) -> str:
        return OP_NORMAL.get(self.text, self.text) if self.kind == "op" else self.text


def parse_number(text: str) -> Fraction:
    return Fraction(text.replace(",", ""))


def tokenize(text: str, base: int = 0) -> list[Tok]:
    """Tokens of `text` with absolute offsets (`base` added)."""
    toks: list[Tok] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup if m.lastgroup not in ("inner", "pct") else None
        if m.group("ann") is not None:
            toks.append(Tok("ann", m.group(0), base + m.start(), base + m.end(),
                            inner=m.group("inner")))
        elif m.group("num") is not None:
            s, e = m.span("num")
            toks.append(Tok("num", m.group("num"), base + s, base + e,
                            value=parse_number(m.group("num")), pct=m.group("pct") is not None))
        elif m.group("xop") is not None:
            toks.append(Tok("op", m.group(0), base + m.start(), base + m.end()))
        else:
            kind = next(k for k in ("op", "lp", "rp", "eq", "skip", "other")
                        if m.group(k) is not None)
            toks.append(Tok(kind, m.group(0), base + m.start(), base + m.end()))
    return toks


# ---------------------------------------------------------------- evaluation

class _Parser:
    """Recursive descent over logical tokens: + - < * / < ^ (right) < unary minus."""

    def __init__(self, toks: list[Tok]):
        self.toks, self.i = toks, 0

    def peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def expr(self) -> Fraction:
        v = self.term()
        while (t := self.peek()) is not None and t.kind == "op" and t.sym in "+-":
            self.i += 1
            r = self.term()
            v = v + r if t.sym == "+" else v - r
        return v

    def term(self) -> Fraction:
        v = self.power()
        while (t := self.peek()) is not None and t.kind == "op" and t.sym in "*/":
            self.i += 1
            r = self.power()
            if t.sym == "/" and r == 0:
                raise ZeroDivisionError
            v = v * r if t.sym == "*" else v / r
        return v

    def power(self) -> Fraction:
        base = self.unary()
        t = self.peek()
        if t is not None and t.kind == "op" and t.sym == "^":
            self.i += 1
            exp = self.power()
            if exp.denominator != 1 or abs(exp) > 64 or (base == 0 and exp < 0):
                raise ValueError("unsupported power")
            return base ** int(exp)
        return base

    def unary(self) -> Fraction:
        t = self.peek()
        if t is not None and t.kind == "op" and t.sym == "-":
            self.i += 1
            return -self.unary()
        return self.atom()

    def atom(self) -> Fraction:
        t = self.peek()
        if t is None:
            raise ValueError("unexpected end")
        self.i += 1
        if t.kind == "num":
            assert t.value is not None
            return t.value / 100 if t.pct else t.value
        if t.kind == "lp":
            v = self.expr()
            close = self.peek()
            if close is None or close.kind != "rp":
                raise ValueError("unbalanced")
            self.i += 1
            return v
        raise ValueError(f"unexpected {t.text!r}")


def evaluate(toks: list[Tok]) -> Fraction | None:
    """Exact value of an expression's tokens, or None when it does not parse or divides by 0."""
    p = _Parser(toks)
    try:
        v = p.expr()
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return v if p.i == len(toks) else None


def decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def holds(lhs: Fraction | None, result: Fraction, result_text: str) -> bool:
    """True when lhs equals the stated result exactly, or rounds to it at its shown precision."""
    if lhs is None:
        return False
    if lhs == result:
        return True
    d = decimals(result_text)
    scaled = lhs * 10 ** d
    return scaled.denominator != 1 and abs(lhs - result) < Fraction(1, 2 * 10 ** d)


def format_number(value: Fraction, like: str = "") -> str:
    """`value` written in the style of `like` (thousands commas, decimal places)."""
    neg = value < 0
    value = abs(value)
    if value.denominator == 1:
        body = f"{int(value):,}" if "," in like else str(int(value))
    else:
        places = max(decimals(like), 1)
        while places < 6 and (value * 10 ** places).denominator != 1:
            places += 1
        body = f"{float(value):,.{places}f}" if "," in like else f"{float(value):.{places}f}"
        body = body.rstrip("0").rstrip(".") if "." in body else body
    return ("-" if neg else "") + body


# ---------------------------------------------------------------- equations

@dataclass
class Rendering:
    """One written form of an equation: lhs tokens (None: not written) and the result token."""

    lhs: list[Tok] | None
    result: Tok | None
    annotation: bool = False


@dataclass
class Equation:
    lhs: list[Tok]  # logical left-hand side (tokens of the primary rendering)
    result: Tok  # the result number
    renderings: list[Rendering] = field(default_factory=list)

    @property
    def value(self) -> Fraction | None:
        return evaluate(self.lhs)

    @property
    def result_value(self) -> Fraction:
        assert self.result.value is not None
        return self.result.value

    def is_true(self) -> bool:
        return holds(self.value, self.result_value, self.result.text)

    @property
    def start(self) -> int:
        return min(t.start for r in self.renderings for t in (r.lhs or []) + [r.result] if t)

    @property
    def end(self) -> int:
        return max(t.end for r in self.renderings for t in (r.lhs or []) + [r.result] if t)

    def operand_indices(self) -> list[int]:
        return [i for i, t in enumerate(self.lhs) if t.kind == "num"]

    def op_indices(self) -> list[int]:
        """Binary operators (a '-' at the start or after '(' / an operator is unary)."""
        out = []
        for i, t in enumerate(self.lhs):
            if t.kind == "op" and i > 0 and self.lhs[i - 1].kind in ("num", "rp"):
                out.append(i)
        return out


_EXPR_KINDS = ("num", "op", "lp", "rp")


def _signature(toks: list[Tok]) -> list[tuple[str, object]]:
    return [(t.kind, t.value if t.kind == "num" else t.sym) for t in toks]


def _is_expression(toks: list[Tok]) -> bool:
    return (sum(t.kind == "num" for t in toks) >= 2 and any(t.kind == "op" for t in toks)
            and evaluate(toks) is not None)


def _result_tok(toks: list[Tok]) -> Tok | None:
    """The single (optionally signed) number of a result run; the sign folds into the value."""
    if len(toks) == 1 and toks[0].kind == "num" and not toks[0].pct:
        return toks[0]
    if (len(toks) == 2 and toks[0].kind == "op" and toks[0].sym == "-" and toks[1].kind == "num"
            and not toks[1].pct and toks[1].value is not None):
        return Tok("num", "-" + toks[1].text, toks[0].start, toks[1].end, value=-toks[1].value)
    return None


def _split_runs(toks: list[Tok]) -> list[tuple[str, list[Tok]]]:
    """Non-skip tokens grouped into ('expr', run) / ('eq', [tok]) / ('ann', [tok]) / ('x', ..)."""
    groups: list[tuple[str, list[Tok]]] = []
    for t in toks:
        if t.kind == "skip":
            continue
        kind = "expr" if t.kind in _EXPR_KINDS else t.kind if t.kind in ("eq", "ann") else "x"
        if kind == "expr" and groups and groups[-1][0] == "expr":
            groups[-1][1].append(t)
        else:
            groups.append((kind, [t]))
    return groups


def _annotation_equation(ann: Tok, before: list[Tok] | None, after: Tok | None) -> Equation | None:
    body = ann.inner
    if body.count("=") != 1:
        return None
    base = ann.start + 2
    inner = [t for t in tokenize(body, base) if t.kind != "skip"]
    k = next(i for i, t in enumerate(inner) if t.kind == "eq")
    lhs, res = inner[:k], _result_tok(inner[k + 1:])
    if res is None or not all(t.kind in _EXPR_KINDS for t in lhs) or not _is_expression(lhs):
        return None
    renderings = [Rendering(lhs, res, annotation=True)]
    visible_lhs = before if before is not None and _signature(before) == _signature(lhs) else None
    visible_res = after if after is not None and after.value == res.value else None
    if visible_lhs is not None or visible_res is not None:
        renderings.insert(0, Rendering(visible_lhs, visible_res))
    return Equation(lhs=lhs, result=res, renderings=renderings)


def find_equations(text: str, base: int = 0) -> list[Equation]:
    """Every true-or-false arithmetic equation written in `text` (offsets + `base`)."""
    toks = tokenize(text, base)
    groups = _split_runs(toks)
    eqs: list[Equation] = []
    used: set[int] = set()
    for gi, (kind, run) in enumerate(groups):
        if kind != "ann":
            continue
        ann = run[0]
        before = None
        if gi >= 2 and groups[gi - 1][0] == "eq" and groups[gi - 2][0] == "expr":
            before = groups[gi - 2][1]
        after = None
        nxt = next((t for t in toks if t.start >= ann.end), None)
        if nxt is not None and nxt.kind == "num" and nxt.start == ann.end:
            after = nxt
        eq = _annotation_equation(ann, before, after)
        if eq is not None:
            eqs.append(eq)
            if eq.renderings[0].lhs is not None and not eq.renderings[0].annotation:
                used.add(gi - 2)
    for gi in range(len(groups) - 2):
        (k1, lhs), (k2, _), (k3, rhs) = groups[gi], groups[gi + 1], groups[gi + 2]
        if gi in used or k1 != "expr" or k2 != "eq" or k3 != "expr":
            continue
        res = _result_tok(rhs)
        if res is None or not _is_expression(lhs):
            continue
        eqs.append(Equation(lhs=lhs, result=res, renderings=[Rendering(lhs, res)]))
    eqs.sort(key=lambda e: e.start)
    return eqs


def numbers_in(text: str) -> list[Fraction]:
    """Every number written in `text` (annotations included), in order."""
    out: list[Fraction] = []
    for t in tokenize(text):
        if t.kind == "num" and t.value is not None:
            out.append(t.value)
        elif t.kind == "ann":
            out.extend(numbers_in(t.inner))
    return out
