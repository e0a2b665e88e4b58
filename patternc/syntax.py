"""Parsing: text -> a small positioned AST, with lark errors turned into diagnostics.

The AST records what the text literally said (runs of characters, groups, repetitions, ``|``
and ``/``) with offsets; ``patternc.lower`` turns it into the IR.  Nothing here knows which
characters are layer symbols: that is the lowering's job, so unknown symbols never abort the
parse and every one of them is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

from patternc.diagnostics import Diagnostic, diag
from patternc.source import Source, Span

if TYPE_CHECKING:
    from lark import Lark, Token, Tree

MAX_NESTING = 32
"""Deepest group nesting accepted (checked on the token stream, before any tree walk)."""


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive non-structural characters (layer symbols, or mistakes)."""

    text: str
    start: int


@dataclass(frozen=True, slots=True)
class Digits:
    """Digits outside a repetition: never valid as layers, kept for a precise diagnostic."""

    text: str
    start: int


@dataclass(frozen=True, slots=True)
class Pipe:
    start: int


@dataclass(frozen=True, slots=True)
class Group:
    elements: tuple[Element, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Parallel:
    """``[*M]``: mixers that run side by side in one layer (the lowering checks what is inside)."""

    elements: tuple[Element, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Repeat:
    """``atom{count}``: the atom is a group, a parallel layer, or the last character of a run."""

    atom: Run | Digits | Group | Parallel
    count: int
    span: Span
    """The ``{count}`` braces."""


Element = Run | Digits | Pipe | Group | Parallel | Repeat


@dataclass(frozen=True, slots=True)
class Part:
    """The main part or one MTP part: the elements between two ``/``."""

    elements: tuple[Element, ...]
    slash: int | None
    """Offset of the ``/`` that opens this part (None for the main part)."""
    end: int
    """Offset just past the part (the next ``/`` or the end of input)."""


@dataclass(frozen=True, slots=True)
class Ast:
    parts: tuple[Part, ...]


@cache
def parser() -> Lark:
    """The LALR parser, built once per process (the grammar is package data)."""
    from lark import Lark

    grammar = files("patternc").joinpath("grammar/pattern.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="basic", propagate_positions=False, maybe_placeholders=False)


def trivia(source: Source) -> list[Token]:
    """Whitespace and comment tokens, which the grammar otherwise ignores."""
    return [tok for tok in parser().lex(source.text, dont_ignore=True) if tok.type in ("WS", "COMMENT")]


def parse(source: Source) -> tuple[Ast | None, list[Diagnostic]]:
    """Parse the text; on a syntax error return no AST and the diagnostics that explain it."""
    from lark.exceptions import UnexpectedInput

    problems, unmatched = _nesting_problems(source)
    if problems and unmatched is None:  # nested too deep: nothing more is worth reading
        return None, problems
    text = source.text
    if unmatched:
        # the rest of the text is still read, with the unmatched brackets blanked out (offsets kept),
        # so that its other problems (an unknown symbol, an empty part) are reported at the same time
        chars = list(text)
        for offset in unmatched:
            chars[offset] = " "
        text = "".join(chars)
    try:
        tree = parser().parse(text)
    except UnexpectedInput as error:
        return None, problems or [_syntax_diagnostic(error, source)]
    return Ast(parts=_parts(tree, len(text))), problems


_CLOSERS = {"LPAR": ("RPAR", "(", ")"), "LBRACK": ("RBRACK", "[", "]")}
_OPENER_OF = {closer: opener for opener, (closer, _, _) in _CLOSERS.items()}


def _nesting_problems(source: Source) -> tuple[list[Diagnostic], list[int] | None]:
    """P008 for unmatched brackets, with their offsets; or for nesting too deep, with None.

    ``(`` and ``[`` share one stack, so ``[*M)`` is an unclosed ``[`` and a ``)`` that no ``(``
    opens: a closer that does not match the innermost opener closes nothing.
    """
    opened: list[tuple[str, int]] = []
    problems: list[Diagnostic] = []
    unmatched: list[int] = []
    for tok in parser().lex(source.text):
        start = tok.start_pos or 0
        if tok.type in _CLOSERS:
            opened.append((tok.type, start))
            if len(opened) > MAX_NESTING:
                problems.append(
                    diag(
                        "P008",
                        f"groups are nested more than {MAX_NESTING} deep",
                        Span.at(start),
                        label="too deep",
                        help="flatten the pattern: counts multiply, so deep nesting is never needed",
                    )
                )
                return problems, None
        elif tok.type in _OPENER_OF:
            opener = _OPENER_OF[tok.type]
            if not opened or opened[-1][0] != opener:
                _, left, right = _CLOSERS[opener]
                what = "group" if opener == "LPAR" else "parallel layer"
                problems.append(
                    diag(
                        "P008",
                        f"unmatched `{right}`",
                        Span.at(start),
                        label=f"no `{left}` opens this {what}",
                        help=f"delete it, or add the `{left}` that opens the {what}",
                    )
                )
                unmatched.append(start)
                continue
            opened.pop()
    unmatched.extend(start for _, start in opened)
    for opener, start in opened:
        _, left, right = _CLOSERS[opener]
        what = "group" if opener == "LPAR" else "parallel layer"
        problems.append(
            diag(
                "P008",
                f"unclosed `{left}`",
                Span.at(start),
                label=f"this {what} is never closed",
                help=f"add the matching `{right}`",
            )
        )
    return problems, sorted(unmatched)


_TOKEN_WORDS = {
    "PIPE": "`|`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LBRACK": "`[`",
    "RBRACK": "`]`",
    "DIGITS": "a count",
    "RUN": "layer symbols",
    "SLASH": "`/`",
    "$END": "the end of the pattern",
}


def _syntax_diagnostic(error: object, source: Source) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    if isinstance(error, UnexpectedToken):
        tok = error.token
        at = tok.start_pos if tok.type != "$END" and tok.start_pos is not None else len(source.text)
        found = "end of the pattern" if tok.type == "$END" else _TOKEN_WORDS.get(tok.type, f"`{tok}`")
        names = set(error.expected)
        if "RUN" in names:  # digits are only ever meaningful inside braces
            names.discard("DIGITS")
        expected = sorted(_TOKEN_WORDS.get(name, name) for name in names if not name.startswith("__"))
        width = max(1, len(str(tok))) if tok.type != "$END" else 0  # the end of input has no character
        help_text = None
        if tok.type == "LBRACE":
            help_text = "a repetition `{n}` follows a layer symbol or a `(group)`, as in `M{3}` or `(M-){4}`"
        elif tok.type == "SLASH":
            help_text = "`/` starts a multi-token-prediction part; it cannot appear inside a group or `[...]`"
        elif tok.type in ("RBRACE", "DIGITS") or "a count" in expected:
            help_text = "write a repetition as `{n}` with a positive whole number, as in `(M-){4}`"
        return diag(
            "P009",
            f"unexpected {found}" + (f", expected {' or '.join(expected)}" if expected else ""),
            Span.at(at, width),
            label=f"unexpected {found}",
            help=help_text,
        )
    assert isinstance(error, UnexpectedCharacters)  # RUN matches every other character
    return diag("P009", "unexpected character", Span.at(error.pos_in_stream or 0), label="unexpected")


def _parts(tree: Tree[Token], text_length: int) -> tuple[Part, ...]:
    """Split ``start``'s children into parts; each SLASH token closes one part and opens the next."""
    from lark import Token

    groups: list[tuple[int | None, list[Element]]] = [(None, [])]
    for child in tree.children:
        if isinstance(child, Token):
            groups.append((child.start_pos or 0, []))
        else:
            groups[-1][1].extend(_element(c) for c in child.children)
    ends = [slash for slash, _ in groups[1:]] + [text_length]
    return tuple(
        Part(elements=tuple(elements), slash=slash, end=end or 0)
        for (slash, elements), end in zip(groups, ends, strict=True)
    )


def _element(node: Tree[Token] | Token) -> Element:
    from lark import Token

    if isinstance(node, Token):
        if node.type == "PIPE":
            return Pipe(node.start_pos or 0)
        raise AssertionError(f"unexpected token {node.type}")
    if node.data == "item":
        atom = _atom(node.children[0])
        if len(node.children) == 1:
            return atom
        repeat = node.children[1]
        assert not isinstance(repeat, str)
        lbrace, digits, rbrace = repeat.children
        assert isinstance(lbrace, Token) and isinstance(digits, Token) and isinstance(rbrace, Token)
        span = Span(lbrace.start_pos or 0, (rbrace.start_pos or 0) + 1)
        count = int(digits) if len(digits) <= 30 else 10**30  # beyond any limit; int() of huge text is slow
        return Repeat(atom=atom, count=count, span=span)
    raise AssertionError(f"unexpected rule {node.data}")


def _atom(node: Tree[Token] | Token) -> Run | Digits | Group | Parallel:
    from lark import Token

    if isinstance(node, Token):
        if node.type == "RUN":
            return Run(str(node), node.start_pos or 0)
        return Digits(str(node), node.start_pos or 0)
    lpar, *inner, rpar = node.children
    assert isinstance(lpar, Token) and isinstance(rpar, Token)
    elements = tuple(_element(c) for c in inner)
    span = Span(lpar.start_pos or 0, (rpar.start_pos or 0) + 1)
    if node.data == "parallel":
        return Parallel(elements=elements, span=span)
    return Group(elements=elements, span=span)
