"""Exact LaTeX → Unicode text for simple inline math, or None.

"Exact" means a reader gets the same mathematics from the text as from the typeset formula:
`\\frac{a+b}{2}` → `(a + b)/2` (never `a + b/2`), `x^{n+1}` → `xⁿ⁺¹`, `\\sqrt{a^2+b^2}` →
`√(a² + b²)`, `x \\equiv 3 \\pmod 7` → `x ≡ 3 (mod 7)`. Anything whose plain-text form could be
read two ways (`2\\frac13` as a mixed number, `\\sqrt2 x`, a superscript without a Unicode
form, an unknown command) gives None, and the caller renders the formula instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["atom", "bin", "rel", "punct", "open", "close", "space", "word"]


@dataclass
class _Tok:
    kind: Kind
    text: str
    fraction: bool = False
    """`a/b`: must not touch a neighbouring factor (`x1/2`, `2 1/3`, `1/2x` all misread)."""
    root: bool = False
    """`√a`: must not touch a following factor (`√2x`)."""
    numeric: bool = False
    scripted: bool = False


class NotExact(Exception):
    """The formula has no exact plain-text form."""


GREEK = {
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "delta": "δ",
    "epsilon": "ε",
    "varepsilon": "ε",
    "zeta": "ζ",
    "eta": "η",
    "theta": "θ",
    "vartheta": "ϑ",
    "iota": "ι",
    "kappa": "κ",
    "lambda": "λ",
    "mu": "μ",
    "nu": "ν",
    "xi": "ξ",
    "pi": "π",
    "rho": "ρ",
    "sigma": "σ",
    "tau": "τ",
    "upsilon": "υ",
    "phi": "ϕ",
    "varphi": "φ",
    "chi": "χ",
    "psi": "ψ",
    "omega": "ω",
    "Gamma": "Γ",
    "Delta": "Δ",
    "Theta": "Θ",
    "Lambda": "Λ",
    "Xi": "Ξ",
    "Pi": "Π",
    "Sigma": "Σ",
    "Phi": "Φ",
    "Psi": "Ψ",
    "Omega": "Ω",
}
SYMBOLS = {
    "infty": "∞",
    "angle": "∠",
    "triangle": "△",
    "emptyset": "∅",
    "varnothing": "∅",
    "ldots": "…",
    "cdots": "⋯",
    "dots": "…",
    "dotsc": "…",
    "dotsb": "⋯",
    "%": "%",
    "$": "$",
    "#": "#",
    "&": "&",
    "_": "_",
    "prime": "′",
    "degree": "°",
    "ell": "ℓ",
    "partial": "∂",
    "nabla": "∇",
    "forall": "∀",
    "exists": "∃",
}
BINARY = {
    "cdot": "·",
    "times": "×",
    "div": "÷",
    "pm": "±",
    "mp": "∓",
    "cup": "∪",
    "cap": "∩",
    "setminus": "∖",
    "circ": "∘",
    "oplus": "⊕",
    "wedge": "∧",
    "vee": "∨",
    "bullet": "•",
    "star": "⋆",
}
RELATIONS = {
    "le": "≤",
    "leq": "≤",
    "leqslant": "≤",
    "ge": "≥",
    "geq": "≥",
    "geqslant": "≥",
    "ne": "≠",
    "neq": "≠",
    "approx": "≈",
    "equiv": "≡",
    "sim": "∼",
    "simeq": "≃",
    "cong": "≅",
    "propto": "∝",
    "to": "→",
    "rightarrow": "→",
    "leftarrow": "←",
    "Rightarrow": "⇒",
    "implies": "⟹",
    "Leftrightarrow": "⇔",
    "iff": "⟺",
    "Longrightarrow": "⟹",
    "longrightarrow": "⟶",
    "mapsto": "↦",
    "in": "∈",
    "notin": "∉",
    "ni": "∋",
    "subset": "⊂",
    "subseteq": "⊆",
    "supset": "⊃",
    "supseteq": "⊇",
    "perp": "⊥",
    "parallel": "∥",
    "mid": "∣",
    "nmid": "∤",
    "ll": "≪",
    "gg": "≫",
}
FUNCTIONS = frozenset(
    {
        *("sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh"),
        *("cosh", "tanh", "log", "ln", "lg", "exp", "det", "gcd", "deg", "max", "min", "dim"),
        *("ker", "arg"),
    }
)
OPEN = {"(": "(", "[": "[", "\\{": "{", "\\lbrace": "{", "\\langle": "⟨", "\\lfloor": "⌊"}
OPEN |= {"\\lceil": "⌈", "\\lvert": "|", "\\lVert": "‖"}
CLOSE = {")": ")", "]": "]", "\\}": "}", "\\rbrace": "}", "\\rangle": "⟩", "\\rfloor": "⌋"}
CLOSE |= {"\\rceil": "⌉", "\\rvert": "|", "\\rVert": "‖"}
BLACKBOARD = {"R": "ℝ", "N": "ℕ", "Z": "ℤ", "Q": "ℚ", "C": "ℂ"}
SPACES = {",", ";", ":", " ", "quad", "qquad", "enspace", "thinspace", "medspace"}
IGNORED = {"displaystyle", "textstyle", "!", "left.", "right.", "limits", "nolimits"}

SUPERSCRIPT = dict(zip("0123456789+-−=()nijkmxythsdr", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ⁿⁱʲᵏᵐˣʸᵗʰˢᵈʳ", strict=True))
SUBSCRIPT = dict(
    zip("0123456789+-−=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True)
)
SUPERSCRIPT["′"] = "′"

_TOKEN = re.compile(r"\\[A-Za-z]+\*?|\\.|\s+|.", re.DOTALL)


def to_unicode(tex: str) -> str | None:
    """The exact plain-text form of an inline formula, or None if there is none."""
    if len(tex) > 300 or "\n" in tex.strip():
        return None
    try:
        parser = _Parser(_TOKEN.findall(tex))
        toks = parser.sequence(until=None)
        return _join(toks) or None
    except NotExact:
        return None


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        while self.pos < len(self.tokens) and self.tokens[self.pos].isspace():
            self.pos += 1
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise NotExact("unexpected end")
        self.pos += 1
        return tok

    def group(self) -> list[_Tok]:
        """A brace group or a single token argument."""
        nxt = self.peek()
        if nxt == "{":
            self.take()
            return self.sequence(until="}")
        if nxt is not None and nxt.isdigit():  # \frac12: each argument is one token
            self.take()
            return [_Tok("atom", nxt, numeric=True)]
        return self.item()

    def raw_group(self) -> str:
        """The literal text of a brace group (for \\text{...})."""
        if self.peek() != "{":
            raise NotExact("text without braces")
        self.take()
        depth = 1
        out: list[str] = []
        while self.pos < len(self.tokens):
            tok = self.tokens[self.pos]
            self.pos += 1
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
                if depth == 0:
                    return "".join(out)
            if tok.startswith("\\") and tok not in ("\\%", "\\$", "\\&", "\\#", "\\_", "\\ "):
                raise NotExact("command inside text")
            out.append(tok[1:] if tok.startswith("\\") else tok)
        raise NotExact("unclosed text")

    def sequence(self, until: str | None) -> list[_Tok]:
        out: list[_Tok] = []
        while True:
            tok = self.peek()
            if tok is None:
                if until is not None:
                    raise NotExact("unclosed group")
                return out
            if tok == until:
                self.take()
                return out
            if tok in ("}", "&") or tok == "\\\\":
                raise NotExact(tok)
            if tok in ("^", "_"):
                self.take()
                if not out or out[-1].kind not in ("atom", "close", "word"):
                    raise NotExact("script without base")
                self.script(out, sup=tok == "^")
                continue
            out.extend(self.item())

    def script(self, out: list[_Tok], sup: bool) -> None:
        arg = self.group()
        base = out[-1]
        if base.fraction or base.root:
            raise NotExact("script on a fraction or root")
        text = _join(arg)
        if sup and text in ("∘", "°"):
            base.text += "°"
            return
        table = SUPERSCRIPT if sup else SUBSCRIPT
        if not text or any(ch not in table for ch in text.replace(" ", "")):
            raise NotExact("no Unicode script form")
        base.text += "".join(table[ch] for ch in text.replace(" ", ""))
        base.numeric = False
        base.scripted = True

    def item(self) -> list[_Tok]:
        tok = self.take()
        if tok.isdigit() or (tok == "." and (self._next_raw() or "").isdigit()):
            text = tok
            while (nxt := self._next_raw()) is not None and (nxt.isdigit() or nxt == "."):
                text += nxt
                self.pos += 1
            return [_Tok("atom", text, numeric=True)]
        if tok.isalpha() and len(tok) == 1:
            return [_Tok("atom", tok)]
        if tok in "+-":
            return [_Tok("bin", "−" if tok == "-" else "+")]
        if tok in "=<>":
            return [_Tok("rel", tok)]
        if tok in ",;.":
            return [_Tok("punct", tok)]
        if tok in ("!", "'"):
            return [_Tok("atom", "!" if tok == "!" else "′")]
        if tok == "/":
            return [_Tok("bin", "/")]
        if tok == "|":
            return [_Tok("atom", "|")]
        if tok == ":":
            return [_Tok("rel", ":")]
        if tok == "{":
            inner = self.sequence(until="}")
            return inner
        if tok in OPEN:
            return [_Tok("open", OPEN[tok])]
        if tok in CLOSE:
            return [_Tok("close", CLOSE[tok])]
        if tok.startswith("\\"):
            return self.command(tok[1:])
        raise NotExact(f"token {tok!r}")

    def _next_raw(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def command(self, name: str) -> list[_Tok]:
        if name in GREEK:
            return [_Tok("atom", GREEK[name])]
        if name in SYMBOLS:
            return [_Tok("atom", SYMBOLS[name])]
        if name in BINARY:
            return [_Tok("bin", BINARY[name])]
        if name in RELATIONS:
            return [_Tok("rel", RELATIONS[name])]
        if name in SPACES:
            return [_Tok("space", " ")]
        if name in IGNORED:
            return []
        if name in ("left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr"):
            delim = self.take()
            if delim == ".":
                return []
            if delim in OPEN:
                return [_Tok("open", OPEN[delim])]
            if delim in CLOSE:
                return [_Tok("close", CLOSE[delim])]
            if delim == "|":
                return [_Tok("atom", "|")]
            raise NotExact(f"delimiter {delim}")
        if name in FUNCTIONS:
            return [_Tok("word", name)]
        if name in ("text", "mathrm", "textrm", "mbox", "operatorname", "textit", "emph"):
            text = self.raw_group()
            if not text.strip():
                return [_Tok("space", " ")]
            return [_Tok("word", text)]
        if name == "mathbb":
            letter = _join(self.group())
            if letter not in BLACKBOARD:
                raise NotExact("mathbb")
            return [_Tok("atom", BLACKBOARD[letter])]
        if name in ("frac", "dfrac", "tfrac"):
            num = self.group()
            den = self.group()
            return [_Tok("atom", f"{_operand(num)}/{_operand(den)}", fraction=True)]
        if name == "sqrt":
            index = ""
            if self.peek() == "[":
                self.take()
                index = _join(self.sequence(until="]"))
            roots = {"": "√", "3": "∛", "4": "∜"}
            if index not in roots:
                raise NotExact("root index")
            return [_Tok("atom", roots[index] + _operand(self.group(), radicand=True), root=True)]
        if name in ("pmod", "mod"):
            modulus = _join(self.group())
            if name == "pmod":
                return [_Tok("word", f"(mod {modulus})")]
            return [_Tok("word", "mod"), _Tok("atom", modulus)]
        if name == "bmod":
            return [_Tok("word", "mod")]
        raise NotExact(f"command \\{name}")


def _operand(toks: list[_Tok], radicand: bool = False) -> str:
    """An operand of `/` or `√`: bare when it is a single atom, else parenthesized (a radicand
    with a script too: `√x²` could be read as `(√x)²`)."""
    toks = [t for t in toks if t.kind != "space"]
    if not toks:
        raise NotExact("empty operand")
    text = _join(toks)
    single = len(toks) == 1 and toks[0].kind == "atom"
    if single and not (toks[0].fraction or toks[0].root or (radicand and toks[0].scripted)):
        return text
    if toks[0].kind == "open" and toks[-1].kind == "close" and _balanced_once(toks):
        return text
    return f"({text})"


def _balanced_once(toks: list[_Tok]) -> bool:
    """True when the first open bracket closes at the very last token."""
    depth = 0
    for i, tok in enumerate(toks):
        depth += tok.kind == "open"
        depth -= tok.kind == "close"
        if depth == 0 and i < len(toks) - 1:
            return False
    return True


def _join(toks: list[_Tok]) -> str:
    """Lay tokens out with TeX-like spacing, refusing juxtapositions that read ambiguously."""
    out: list[str] = []
    prev: _Tok | None = None
    for tok in toks:
        if tok.kind == "space":
            if out and out[-1] != " ":
                out.append(" ")
            continue
        if prev is not None:
            _check_adjacent(prev, tok)
        if tok.kind == "bin":
            unary = prev is None or prev.kind in ("bin", "rel", "punct", "open")
            if tok.text == "/":
                out.append("/")
            elif unary:
                out.append(tok.text)
            else:
                _space(out)
                out.append(tok.text + " ")
        elif tok.kind == "rel":
            _space(out)
            out.append(tok.text + " ")
        elif tok.kind == "punct":
            out.append(tok.text + " ")
        elif tok.kind == "word":
            if prev is not None and prev.kind in ("atom", "close", "word"):
                _space(out)
            out.append(tok.text)
            if len(tok.text) > 1 or not tok.text.isalpha():
                out.append(" ")
        else:
            out.append(tok.text)
        prev = tok
    return re.sub(r" {2,}", " ", "".join(out)).strip()


def _space(out: list[str]) -> None:
    if out and not out[-1].endswith(" "):
        out.append(" ")


def _check_adjacent(prev: _Tok, tok: _Tok) -> None:
    """Juxtapositions whose plain-text reading differs from the typeset one."""
    touching = tok.kind in ("atom", "open") and prev.kind in ("atom", "close")
    if touching and (prev.fraction or prev.root):
        raise NotExact("fraction or root followed by a factor")  # 1/2x, √2x
    if touching and tok.fraction:
        raise NotExact("factor followed by a fraction")  # x1/2, 2 1/3 (a mixed number?)
    divides = prev.kind == "bin" and prev.text in ("/", "÷")
    if tok.fraction and (divides or (prev.kind == "word" and prev.text in FUNCTIONS)):
        raise NotExact("fraction after a division or a function")  # a ÷ 1/2, sin 1/2
