"""Other ways of writing a MATH-500 reference answer, for measuring answer equivalence where it
matters: two answers that are written differently.

MATH-500's `answer` field is, character for character, the last `\\boxed{}` of its `solution`,
so comparing those two says nothing about equivalence. Instead each reference answer is
rewritten by rules that a reader can check keep its meaning (`REWRITES`: the forms in which
a reasoning model's final answer differs from the reference: `x = 5` for `5`, `3/4` or `0.75`
for `\\frac{3}{4}`, `12{,}345`, degrees written or not, the solutions of an equation in another
order or spelled out from `\\pm`, an interval as inequalities, units and dollar signs...), and
by rules that change its meaning (`PERTURBATIONS`: off by one, negated, a fraction upside down,
an interval's bracket flipped, a point's coordinates swapped, an element dropped...). A rule
applies only where its pattern matches the whole answer, so each variant is right by
construction; the problem text is consulted only to tell angles (degrees) and interval notation.

Pure string work, no math library: a rewrite must not depend on the parser it tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

Rule = Callable[[str, str], str | None]
"""(answer, problem) -> the answer rewritten, or None where the rule does not apply."""

_INT = r"-?\d+"
_INTEGER = re.compile(rf"^{_INT}$")
_GROUPED = re.compile(r"^(\d{1,3})((?:,\\!\s?\d{3}|,\d{3}|\{,\}\d{3})+)$")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\s*\{?\s*(\d+)\s*\}?\s*\{?\s*(\d+)\s*\}?$")
_DECIMAL = re.compile(r"^(-?)(\d*)\.(\d+)$")
_MIXED = re.compile(r"^(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}$")
_SQRT_FRAC = re.compile(r"^(-?)\\frac\{(\d*)\s*\\sqrt\{?(\d+)\}?\}\{(\d+)\}$")
_PI_FRAC = re.compile(r"^(-?)\\frac\{(\d*)\s*\\pi\}\{(\d+)\}$")
_DEGREES = re.compile(r"^(-?\d+(?:\.\d+)?)\s*\^\s*\{?\\circ\}?$")
_CHOICE = re.compile(r"^\\text\{\s*\(([A-E])\)\s*\}$")
_TEXT_WORD = re.compile(r"^\\text\{([A-Za-z]+)\}$")
_DOLLAR = re.compile(r"^\\\$\s*(.+)$")
_UNITS = re.compile(r"^(.+?)\s*\\(?:text|mbox)\{\s*[A-Za-z ]+\}(?:\^\d)?$")
_X_IN = re.compile(r"^[a-z]\s*\\in\s*(.+)$")
_INTERVAL = re.compile(
    r"^(\\left)?\s*([(\[])\s*([^,()\[\]]+?)\s*,\s*([^,()\[\]]+?)\s*(\\right)?\s*([)\]])$"
)
_PM = re.compile(r"^([^,\\]*?\S)\s*\\pm\s*(.+)$")
_COMPLEX = re.compile(r"^(-?\d+)\s*([+-])\s*(\d*)i$")
_POINT = re.compile(r"^(\\left)?\s*\(\s*(.+)\s*(\\right)?\s*\)$")
_MATRIX = re.compile(r"\\begin\{pmatrix\}(.*)\\end\{pmatrix\}", re.DOTALL)
_SLASH_FRAC = re.compile(r"(-?\d+)/(\d+)")
_RELATION = re.compile(r"=|\\le|\\ge|<|>|\\in|\\cup|\\text|\\mbox|\\begin|\\pm|\\\$|\\%|\\circ|_")
_ALPHA = re.compile(r"[A-Za-z]")


def top_level_split(text: str, separator: str = ",") -> list[str]:
    """`text` cut at `separator` outside braces, brackets and parentheses."""
    parts: list[str] = []
    depth = 0
    current = ""
    index = 0
    while index < len(text):
        char = text[index]
        if char in "{([":
            depth += 1
        elif char in "})]":
            depth -= 1
        if depth == 0 and text.startswith(separator, index) and not _is_thousands(text, index):
            parts.append(current)
            current = ""
            index += len(separator)
            continue
        current += char
        index += 1
    parts.append(current)
    return [part.strip() for part in parts]


def _is_thousands(text: str, index: int) -> bool:
    return (
        bool(re.match(r",(?:\\!)?\s?\d{3}(?!\d)", text[index:]))
        and index > 0
        and (text[index - 1].isdigit())
    )


def _is_simple_list(answer: str) -> list[str] | None:
    """The elements of an unbracketed list of solutions (`1,-2`, `3, 5, 7`)."""
    if answer.startswith(("(", "[", "\\left", "\\{", "\\begin")) or "=" in answer:
        return None
    parts = top_level_split(answer)
    return parts if len(parts) >= 2 and all(parts) else None


def _is_set(answer: str) -> list[str] | None:
    match = re.match(r"^\\\{(.*)\\\}$", answer)
    if match is None:
        return None
    parts = top_level_split(match[1])
    return parts if len(parts) >= 2 and all(parts) else None


def _plain_expression(answer: str) -> bool:
    """A single value or expression: no list, relation, set, text or unit."""
    return not _RELATION.search(answer) and len(top_level_split(answer)) == 1


def _angle_problem(problem: str) -> bool:
    """The problem asks for an angle in degrees."""
    lowered = problem.lower()
    return any(words in lowered for words in ("in degrees", "how many degrees", "degree measure"))


# --- rewrites: the same answer, written otherwise ------------------------------------------


def assign(answer: str, problem: str) -> str | None:
    """`5` → `x = 5`: the answer given as the value of the unknown."""
    return f"x = {answer}" if _plain_expression(answer) else None


def thousands(answer: str, problem: str) -> str | None:
    """`12345` → `12{,}345`; `11,\\! 111,\\! 100` → `11111100`."""
    if _INTEGER.match(answer) and abs(int(answer)) >= 1000:
        return f"{int(answer):,}".replace(",", "{,}")
    grouped = _GROUPED.match(answer)
    if grouped:
        return re.sub(r"[^\d]", "", answer)
    return None


def degrees(answer: str, problem: str) -> str | None:
    """`30^\\circ` → `30`, and an angle in degrees `120` → `120^\\circ`."""
    match = _DEGREES.match(answer)
    if match:
        return match[1]
    if _angle_problem(problem) and re.match(r"^\d+$", answer):
        return f"{answer}^\\circ"
    return None


def choice(answer: str, problem: str) -> str | None:
    """`\\text{(B)}` → `B`."""
    match = _CHOICE.match(answer)
    return match[1] if match else None


def text_word(answer: str, problem: str) -> str | None:
    """`\\text{Evelyn}` → `Evelyn` (a name or a word, unformatted)."""
    match = _TEXT_WORD.match(answer)
    return match[1] if match else None


def slash_fraction(answer: str, problem: str) -> str | None:
    """`\\frac{3}{4}` → `3/4`."""
    match = _FRAC.match(answer)
    return f"{match[1]}{match[2]}/{match[3]}" if match else None


def decimal_fraction(answer: str, problem: str) -> str | None:
    """`\\frac{3}{4}` → `0.75` where the decimal ends; `1.25` → `\\frac{5}{4}`."""
    match = _FRAC.match(answer)
    if match:
        value = Fraction(int(match[2]), int(match[3]))
        denominator = value.denominator
        for prime in (2, 5):
            while denominator % prime == 0:
                denominator //= prime
        if denominator != 1 or value.denominator == 1:
            return None
        digits = 0
        while (value * 10**digits).denominator != 1:
            digits += 1
        return f"{match[1]}{float(value):.{digits}f}"
    decimal = _DECIMAL.match(answer)
    if decimal:
        value = Fraction(f"{decimal[2] or '0'}.{decimal[3]}")
        if value.denominator == 1:
            return None
        return f"{decimal[1]}\\frac{{{value.numerator}}}{{{value.denominator}}}"
    return None


def mixed_number(answer: str, problem: str) -> str | None:
    """`1\\frac{4}{5}` → `\\frac{9}{5}`."""
    match = _MIXED.match(answer)
    if not match:
        return None
    value = int(match[1]) + Fraction(int(match[2]), int(match[3]))
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def coefficient_out(answer: str, problem: str) -> str | None:
    """`\\frac{3\\sqrt{3}}{4}` → `\\frac{3}{4}\\sqrt{3}`; `\\frac{5\\pi}{4}` →
    `\\frac{5}{4}\\pi`."""
    match = _SQRT_FRAC.match(answer)
    if match:
        sign, coefficient, radicand, denominator = match.groups()
        return f"{sign}\\frac{{{coefficient or 1}}}{{{denominator}}}\\sqrt{{{radicand}}}"
    match = _PI_FRAC.match(answer)
    if match:
        sign, coefficient, denominator = match.groups()
        return f"{sign}\\frac{{{coefficient or 1}}}{{{denominator}}}\\pi"
    return None


def reorder(answer: str, problem: str) -> str | None:
    """The solutions in another order: `1,-2` → `-2, 1`; `\\{a, b\\}` → `\\{b, a\\}`."""
    parts = _is_simple_list(answer)
    if parts is not None and len(set(parts)) == len(parts):
        return ", ".join(reversed(parts))
    parts = _is_set(answer)
    if parts is not None:
        return "\\{" + ", ".join(reversed(parts)) + "\\}"
    return None


def spell_out_pm(answer: str, problem: str) -> str | None:
    """`1 \\pm \\sqrt{19}` → `1 - \\sqrt{19}, 1 + \\sqrt{19}`."""
    match = _PM.match(answer)
    if not match or "\\pm" in match[2]:
        return None
    head, tail = match[1].strip(), match[2].strip()
    return f"{head} - {tail}, {head} + {tail}"


def inequality(answer: str, problem: str) -> str | None:
    """An interval asked for in interval notation, as inequalities: `(5,\\infty)` → `x > 5`,
    `\\left(\\frac{3}{5},\\frac{8}{3}\\right]` → `\\frac{3}{5} < x \\le \\frac{8}{3}`."""
    if "interval notation" not in problem.lower():
        return None
    match = _INTERVAL.match(answer)
    if not match:
        return None
    _, opening, low, high, _, closing = match.groups()
    low_infinite = low.replace(" ", "") == "-\\infty"
    high_infinite = high.replace(" ", "") == "\\infty"
    below = "<" if opening == "(" else "\\le"
    above = "<" if closing == ")" else "\\le"
    if low_infinite and high_infinite:
        return None
    if low_infinite:
        return f"x {above} {high}"
    if high_infinite:
        lower = ">" if opening == "(" else "\\ge"
        return f"x {lower} {low}"
    return f"{low} {below} x {above} {high}"


def drop_membership(answer: str, problem: str) -> str | None:
    """`x \\in [-2,7]` → `[-2,7]`."""
    match = _X_IN.match(answer)
    return match[1].strip() if match else None


def no_dollar(answer: str, problem: str) -> str | None:
    """`\\$18.90` → `18.90`."""
    match = _DOLLAR.match(answer)
    return match[1].replace(",\\!", "") if match else None


def no_units(answer: str, problem: str) -> str | None:
    """`5.4 \\text{ cents}` → `5.4`; `15\\mbox{ cm}^2` → `15`."""
    match = _UNITS.match(answer)
    return match[1].strip() if match and not _ALPHA.search(match[1].replace("\\frac", "")) else None


def complex_order(answer: str, problem: str) -> str | None:
    """`6+9i` → `9i+6`."""
    match = _COMPLEX.match(answer.replace(" ", ""))
    if not match:
        return None
    real, sign, imaginary = match.groups()
    return f"{'-' if sign == '-' else ''}{imaginary}i + {real}".replace("+ -", "- ")


def reorder_terms(answer: str, problem: str) -> str | None:
    """A sum with variables, its terms in reverse order: `x^3+3x-6` → `-6 + 3x + x^3`."""
    if not _plain_expression(answer) or not _ALPHA.search(answer) or "\\" in answer:
        return None
    if _COMPLEX.match(answer.replace(" ", "")):
        return None
    terms = re.findall(r"[+-]?[^+-]+", answer.replace(" ", ""))
    if len(terms) < 2 or any(t.endswith(("^", "(")) for t in terms) or "(" in answer:
        return None
    signed = [t if t[0] in "+-" else "+" + t for t in terms]
    text = " ".join(reversed(signed))
    return text[1:] if text.startswith("+") else text


def bmatrix(answer: str, problem: str) -> str | None:
    """`\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}` → bmatrix with `\\frac{1}{5}`."""
    match = _MATRIX.match(answer)
    if not match:
        return None
    body = _SLASH_FRAC.sub(lambda m: f"\\frac{{{m[1]}}}{{{m[2]}}}", match[1])
    return f"\\begin{{bmatrix}}{body}\\end{{bmatrix}}"


# --- perturbations: another answer ------------------------------------------------------------


def plus_one(answer: str, problem: str) -> str | None:
    """An integer (or an angle) off by one."""
    if _INTEGER.match(answer):
        return str(int(answer) + 1)
    match = _DEGREES.match(answer)
    if match and _INTEGER.match(match[1]):
        return f"{int(match[1]) + 1}^\\circ"
    return None


def negate(answer: str, problem: str) -> str | None:
    """A non-zero value with the other sign: `\\frac{3}{4}` → `-\\frac{3}{4}`."""
    if not _plain_expression(answer) or re.fullmatch(r"-?0+(\.0+)?", answer):
        return None
    if answer.startswith("-") and len(top_level_split(answer[1:], "+")) == 1:
        return answer[1:] if "-" not in answer[1:] else None
    if len(top_level_split(answer, "+")) == 1 and "-" not in answer:
        return f"-{answer}"
    return None


def flip_fraction(answer: str, problem: str) -> str | None:
    """`\\frac{3}{4}` → `\\frac{4}{3}`."""
    match = _FRAC.match(answer)
    if not match or match[2] == match[3] or match[2] == "0":
        return None
    return f"{match[1]}\\frac{{{match[3]}}}{{{match[2]}}}"


def flip_bracket(answer: str, problem: str) -> str | None:
    """An interval with its finite left end open instead of closed, or the other way round."""
    match = _INTERVAL.match(answer)
    if not match or "infty" in match[3] or "interval" not in problem.lower():
        return None
    opening = "[" if match[2] == "(" else "("
    return f"{opening}{match[3]}, {match[4]}{match[6]}"


def swap_coordinates(answer: str, problem: str) -> str | None:
    """A point or tuple with its first two coordinates swapped: `(8,-2)` → `(-2,8)`."""
    if "interval" in problem.lower() or "\\cup" in answer or "\\infty" in answer:
        return None
    match = _POINT.match(answer)
    if not match:
        return None
    parts = top_level_split(match[2].replace("\\right", ""))
    if len(parts) < 2 or parts[0] == parts[1]:
        return None
    return "(" + ", ".join([parts[1], parts[0], *parts[2:]]) + ")"


def drop_element(answer: str, problem: str) -> str | None:
    """A list of solutions or a set without its last element."""
    parts = _is_simple_list(answer)
    if parts is not None:
        return ", ".join(parts[:-1])
    parts = _is_set(answer)
    if parts is not None:
        return "\\{" + ", ".join(parts[:-1]) + "\\}"
    return None


def other_choice(answer: str, problem: str) -> str | None:
    """`\\text{(B)}` → `\\text{(C)}`."""
    match = _CHOICE.match(answer)
    if not match:
        return None
    letter = "A" if match[1] == "E" else chr(ord(match[1]) + 1)
    return f"\\text{{({letter})}}"


def drop_root(answer: str, problem: str) -> str | None:
    """`3\\sqrt{13}` → `3 \\cdot 13`: the radical left out."""
    if "\\sqrt" not in answer or not _plain_expression(answer):
        return None
    dropped = re.sub(r"\\sqrt\{(\d+)\}", r"(\1)", answer, count=1)
    return dropped if dropped != answer and "\\sqrt" not in dropped else None


def drop_pi(answer: str, problem: str) -> str | None:
    """`12\\pi` → `12`."""
    if not re.fullmatch(r"-?\d+\s*\\pi", answer):
        return None
    return answer.replace("\\pi", "").strip()


def last_digit(answer: str, problem: str) -> str | None:
    """A formula with its last digit changed (`x^5 - x^4 + ... - 1` → `... - 2`): for answers
    no other perturbation reaches. Digits in subscripts (bases) are left alone."""
    if _INTEGER.match(answer) or "_" in answer or not re.search(r"\d", answer):
        return None
    match = list(re.finditer(r"\d", answer))[-1]
    digit = str((int(match[0]) + 1) % 10)
    if digit == "0" and (match.start() == 0 or not answer[match.start() - 1].isdigit()):
        digit = "2"
    return answer[: match.start()] + digit + answer[match.end() :]


@dataclass(frozen=True, slots=True)
class Variant:
    rule: str
    answer: str


REWRITES: dict[str, Rule] = {
    "x = answer": assign,
    "digit groups": thousands,
    "degrees": degrees,
    "choice letter": choice,
    "\\text{} word": text_word,
    "a/b": slash_fraction,
    "decimal ↔ fraction": decimal_fraction,
    "mixed number": mixed_number,
    "coefficient out of the fraction": coefficient_out,
    "solutions reordered": reorder,
    "\\pm spelled out": spell_out_pm,
    "interval as inequalities": inequality,
    "x \\in dropped": drop_membership,
    "no dollar sign": no_dollar,
    "no units": no_units,
    "complex terms reordered": complex_order,
    "terms reordered": reorder_terms,
    "pmatrix → bmatrix": bmatrix,
}

PERTURBATIONS: dict[str, Rule] = {
    "off by one": plus_one,
    "negated": negate,
    "fraction flipped": flip_fraction,
    "bracket flipped": flip_bracket,
    "coordinates swapped": swap_coordinates,
    "element dropped": drop_element,
    "other choice": other_choice,
    "radical dropped": drop_root,
    "\\pi dropped": drop_pi,
    "last digit changed": last_digit,
}


def variants(answer: str, problem: str, rules: dict[str, Rule]) -> list[Variant]:
    found: list[Variant] = []
    for name, rule in rules.items():
        rewritten = rule(answer.strip(), problem)
        if rewritten is not None and rewritten.strip() and rewritten.strip() != answer.strip():
            found.append(Variant(name, rewritten))
    return found
