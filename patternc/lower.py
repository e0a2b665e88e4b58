"""Lowering: AST -> IR plus a side table of source positions, under a dialect profile.

This is the only module that attaches positions to layers.  It reports every lexical problem
(unknown symbols, features the dialect lacks) and the structural problems the IR cannot even
represent (``|`` inside MTP, empty or differing MTP parts), all at once.  Sizes are computed
and bounded *before* repetition is expanded, so ``(M){10000000000}`` costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from patternc.diagnostics import Diagnostic, Label, diag, has_errors
from patternc.dialects import PROFILES, Dialect, Profile
from patternc.ir import Pattern, make_pattern
from patternc.kinds import admitted
from patternc.limits import Limits
from patternc.source import Source, Span
from patternc.symbols import BY_SYMBOL, MTP_SEPARATOR, PIPE, char_name, describe, suggest
from patternc.syntax import Ast, Digits, Element, Group, Parallel, Part, Pipe, Repeat, Run, trivia


@dataclass(frozen=True, slots=True)
class SourceMap:
    """Where the IR came from: character offsets, kept out of the IR so ``==`` stays structural."""

    main: list[int] = field(default_factory=list)
    """Offset of the symbol that produced each main layer."""
    mtp: list[int] = field(default_factory=list)
    """Offset of the symbol that produced each layer of the first MTP depth."""
    pipes: list[int] = field(default_factory=list)
    """Offset of each ``|`` of the main part, in order (stage ``i`` ends at ``pipes[i]``)."""
    text_length: int = 0

    def layer_span(self, index: int) -> Span | None:
        return Span.at(self.main[index]) if index < len(self.main) else None

    def mtp_span(self, index: int) -> Span | None:
        return Span.at(self.mtp[index]) if index < len(self.mtp) else None


@dataclass(slots=True)
class _Expanded:
    """One part, flattened: characters (symbols, ``|`` and mistakes) with their offsets."""

    chars: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)


def lower(
    ast: Ast, source: Source, dialect: Dialect, limits: Limits
) -> tuple[Pattern | None, SourceMap, list[Diagnostic]]:
    profile = PROFILES[dialect]
    problems: list[Diagnostic] = []
    problems.extend(_dialect_features(ast, source, profile))
    problems.extend(_symbol_problems(ast, profile))
    problems.extend(_parallel_problems(ast, profile))

    sizes = [_size(part.elements) for part in ast.parts]
    total = sum(sizes)
    if total > limits.max_layers:
        problems.append(
            diag(
                "P011",
                f"the pattern expands to {_count_words(total)} layers, above the limit of {limits.max_layers:,}",
                Span(0, len(source.text)),
                label="too many layers",
                help="raise the limit with `--max-layers N` (API: `Limits(max_layers=N)`) if this is intended",
            )
        )
        return None, SourceMap(text_length=len(source.text)), problems

    parts = [_expand(part.elements) for part in ast.parts]
    main, mtp_parts = parts[0], parts[1:]
    problems.extend(_mtp_problems(ast.parts, mtp_parts, source))

    valid = set(profile.alphabet)
    main_symbols = [
        (c, o) for c, o in zip(main.chars, main.offsets, strict=True) if c in valid or c == PIPE or c[0] == "["
    ]
    stage_sizes = [0]
    pipes: list[int] = []
    flat: list[str] = []
    offsets: list[int] = []
    parallel: dict[int, str] = {}
    for char, offset in main_symbols:
        if char == PIPE:
            pipes.append(offset)
            stage_sizes.append(0)
        else:
            if char[0] == "[":  # a parallel layer, `[*M]`: its first mixer, and the others beside it
                parallel[len(flat)] = char[2:-1]
                char = char[1]
            flat.append(char)
            offsets.append(offset)
            stage_sizes[-1] += 1
    mtp_flat: list[str] = []
    mtp_offsets: list[int] = []
    mtp_parallel: dict[int, str] = {}
    if mtp_parts:
        first = mtp_parts[0]
        for char, offset in zip(first.chars, first.offsets, strict=True):
            if char in valid or char[0] == "[":
                if char[0] == "[":
                    mtp_parallel[len(mtp_flat)] = char[2:-1]
                    char = char[1]
                mtp_flat.append(char)
                mtp_offsets.append(offset)
    source_map = SourceMap(main=offsets, mtp=mtp_offsets, pipes=pipes, text_length=len(source.text))
    if has_errors(problems):
        return None, source_map, problems
    pattern = make_pattern(
        "".join(flat), stage_sizes, "".join(mtp_flat), len(mtp_parts), parallel=parallel, mtp_parallel=mtp_parallel
    )
    return pattern, source_map, problems


def _count_words(n: int) -> str:
    return f"{n:,}" if n < 10**15 else f"at least 10^{len(str(n)) - 1}"


def _walk(elements: tuple[Element, ...]) -> Iterator[Element]:
    for element in elements:
        yield element
        if isinstance(element, Repeat):
            yield from _walk((element.atom,))
        elif isinstance(element, Group | Parallel):
            yield from _walk(element.elements)


def _dialect_features(ast: Ast, source: Source, profile: Profile) -> Iterator[Diagnostic]:
    name = profile.dialect.value
    hint = "use `--dialect patternc`, or write the pattern out in full"
    for part in ast.parts:
        if part.slash is not None and not profile.mtp:
            yield diag(
                "P007",
                f"`/` (multi-token prediction) is not part of dialect {name}",
                Span.at(part.slash),
                label="MTP separator",
                help="transformers takes MTP layers from `mtp_hybrid_override_pattern`; "
                "use `--dialect megatron` for the unified string",
            )
        for element in _walk(part.elements):
            if isinstance(element, Pipe) and not profile.pipes:
                yield diag(
                    "P006",
                    f"`|` (pipeline-stage separator) is not part of dialect {name}",
                    Span.at(element.start),
                    label="pipeline separator",
                    help="remove it, or use `--dialect megatron`",
                )
            elif isinstance(element, Parallel) and not profile.parallel:
                yield diag(
                    "P018",
                    f"parallel layers `[...]` are not part of dialect {name}",
                    element.span,
                    label="parallel layer",
                    help="only `--dialect patternc` can say that mixers share one layer; "
                    f"no {name} pattern spells a Falcon-H1-style layer",
                )
            elif isinstance(element, Group) and not profile.repetition:
                yield diag("P005", f"groups are not part of dialect {name}", element.span, label="group", help=hint)
            elif isinstance(element, Repeat) and not profile.repetition:
                yield diag(
                    "P005",
                    f"repetition is not part of dialect {name}",
                    element.span,
                    label="repetition",
                    help=hint,
                )
    if not profile.trivia:
        for tok in trivia(source):
            start = tok.start_pos or 0
            if tok.type == "WS":
                yield diag(
                    "P003",
                    f"whitespace is not allowed in dialect {name}",
                    Span.at(start, len(tok)),
                    label="whitespace",
                    help="remove it, or use `--dialect patternc`",
                )
            else:
                yield diag(
                    "P004",
                    f"comments are not allowed in dialect {name}",
                    Span.at(start, len(tok)),
                    label="comment",
                    help="remove it, or use `--dialect patternc`",
                )


def _symbol_problems(ast: Ast, profile: Profile) -> Iterator[Diagnostic]:
    for part in ast.parts:
        for element in _walk(part.elements):
            if isinstance(element, Run):
                yield from _run_problems(element, profile)
            elif isinstance(element, Digits):
                yield diag(
                    "P001",
                    f"`{element.text}` is not a layer symbol",
                    Span.at(element.start, len(element.text)),
                    label="digits",
                    help="to repeat a layer write `M{3}` or `(M-){3}` (dialect patternc)"
                    if profile.repetition
                    else "patterns spell every layer out, one symbol each",
                )
            elif isinstance(element, Repeat) and element.count == 0:
                yield diag(
                    "P010",
                    "a repetition count of 0 removes its layers",
                    element.span,
                    label="count 0",
                    help="delete the group instead, or use a count of 1 or more",
                )


def _parallel_problems(ast: Ast, profile: Profile) -> Iterator[Diagnostic]:
    """P019 for what cannot stand between ``[`` and ``]``: a parallel layer is two or more distinct
    token mixers written out, one symbol each (no FFN, no ``|``, no group, repetition or nesting)."""
    if not profile.parallel:
        return  # P018 already refuses the brackets themselves
    for part in ast.parts:
        for element in _walk(part.elements):
            if isinstance(element, Parallel):
                yield from _one_parallel(element)


def _one_parallel(layer: Parallel) -> Iterator[Diagnostic]:
    help_text = "a parallel layer lists two or more distinct mixers, as in `[*M]`; its FFN follows it: `[*M]-`"
    seen: dict[str, int] = {}
    for element in layer.elements:
        if isinstance(element, Pipe):
            yield diag(
                "P019",
                "`|` inside a parallel layer",
                Span.at(element.start),
                label="pipeline separator",
                help="a pipeline stage boundary falls between layers: put `|` before `[` or after `]`",
            )
        elif isinstance(element, Group | Parallel | Repeat):
            what = "another parallel layer" if isinstance(element, Parallel) else "a group or repetition"
            yield diag(
                "P019",
                f"{what} inside a parallel layer",
                element.span,
                label="not a mixer symbol",
                help=help_text + "; repeat the whole layer instead: `[*M]{4}` or `([*M]-){4}`",
            )
        elif isinstance(element, Run):
            for position, char in enumerate(element.text):
                defn = BY_SYMBOL.get(char)
                if defn is None:
                    continue  # P001 reports it
                at = Span.at(element.start + position)
                if not defn.role.mixes_tokens:
                    yield diag(
                        "P019",
                        f"{describe(char)} is a feed-forward block, not a token mixer",
                        at,
                        label="FFN inside a parallel layer",
                        help=help_text,
                    )
                elif char in seen:
                    yield diag(
                        "P019",
                        f"{describe(char)} appears twice in one parallel layer",
                        at,
                        label="repeated mixer",
                        help=help_text,
                        secondary=[Label(Span.at(seen[char]), "first here")],
                    )
                else:
                    seen[char] = element.start + position
    mixers = sum(1 for e in layer.elements if isinstance(e, Run) for c in e.text if c in BY_SYMBOL)
    if mixers < 2 and all(isinstance(e, Run) for e in layer.elements):
        only = "".join(e.text for e in layer.elements if isinstance(e, Run))
        yield diag(
            "P019",
            "an empty parallel layer" if not layer.elements else f"a parallel layer with one mixer, `[{only}]`",
            layer.span,
            label="fewer than two mixers",
            help="a parallel layer runs two or more mixers side by side, as in `[*M]`"
            + (f"; one mixer is written plainly: `{only}`" if only else ""),
        )


def unknown_symbols(source: Source, dialect: Dialect) -> list[Diagnostic]:
    """P001 for every unknown symbol of a text that does not parse: the grammar's tokens are still
    there (``RUN`` matches anything not structural), so a syntax error need not hide them."""
    from patternc.syntax import parser

    profile = PROFILES[dialect]
    problems: list[Diagnostic] = []
    for tok in parser().lex(source.text):
        if tok.type == "RUN":
            problems.extend(_run_problems(Run(str(tok), tok.start_pos or 0), profile))
    return problems


def _alphabet_help(profile: Profile) -> str:
    return "valid symbols: " + ", ".join(describe(s) for s in profile.alphabet)


def _run_problems(run: Run, profile: Profile) -> Iterator[Diagnostic]:
    valid = profile.alphabet
    if set(run.text) <= set(valid):
        return
    index = 0
    text = run.text
    while index < len(text):
        char = text[index]
        if char in valid:
            index += 1
            continue
        end = index + 1
        while end < len(text) and text[end] == char:
            end += 1
        span = Span(run.start + index, run.start + end)
        yield _bad_symbol(char, span, profile)
        index = end


def _admitting(symbol: str) -> str:
    """The plainest dialect that admits ``symbol``: Megatron's when it does, else patternc's (every kind)."""
    return Dialect.MEGATRON.value if admitted(BY_SYMBOL[symbol], Dialect.MEGATRON.value) else Dialect.PATTERNC.value


def _bad_symbol(char: str, span: Span, profile: Profile) -> Diagnostic:
    name = profile.dialect.value
    if char in BY_SYMBOL:
        return diag(
            "P002",
            f"{describe(char)} is not a layer symbol of dialect {name}",
            span,
            label=f"not in dialect {name}",
            help=f"dialect {name} accepts only {', '.join(f'`{s}`' for s in profile.alphabet)}; "
            f"`--dialect {_admitting(char)}` accepts it",
        )
    separators = (PIPE if profile.pipes else "") + (MTP_SEPARATOR if profile.mtp else "")
    meant = suggest(char, profile.alphabet + separators)
    message = f"{char_name(char)} is not a layer symbol"
    if char.isspace():  # only reachable for exotic spaces the lexer did not treat as trivia
        return diag("P003", f"whitespace {char_name(char)} is not allowed", span, label="whitespace")
    if meant is not None:
        return diag("P001", message, span, label=f"did you mean `{meant}`?", help=f"did you mean {describe(meant)}?")
    return diag("P001", message, span, label="unknown symbol", help=_alphabet_help(profile))


def _size(elements: tuple[Element, ...]) -> int:
    """Characters a sequence expands to (layers and ``|``), computed without expanding."""
    total = 0
    for element in elements:
        if isinstance(element, Run | Digits):
            total += len(element.text)
        elif isinstance(element, Pipe | Parallel):  # a parallel layer is one layer
            total += 1
        elif isinstance(element, Group):
            total += _size(element.elements)
        else:
            unit = _size((element.atom,)) if isinstance(element.atom, Group | Parallel) else 1
            prefix = len(element.atom.text) - 1 if isinstance(element.atom, Run | Digits) else 0
            total += prefix + unit * element.count
    return total


def _expand(elements: tuple[Element, ...]) -> _Expanded:
    out = _Expanded()
    for element in elements:
        if isinstance(element, Run):
            out.chars.extend(element.text)
            out.offsets.extend(range(element.start, element.start + len(element.text)))
        elif isinstance(element, Digits):
            continue  # reported as unknown symbols; never layers
        elif isinstance(element, Pipe):
            out.chars.append(PIPE)
            out.offsets.append(element.start)
        elif isinstance(element, Group):
            inner = _expand(element.elements)
            out.chars.extend(inner.chars)
            out.offsets.extend(inner.offsets)
        elif isinstance(element, Parallel):
            out.chars.append(_parallel_entry(element))
            out.offsets.append(element.span.start)
        else:
            atom = element.atom
            if isinstance(atom, Parallel):
                out.chars.extend([_parallel_entry(atom)] * element.count)
                out.offsets.extend([atom.span.start] * element.count)
            elif isinstance(atom, Group):
                inner = _expand(atom.elements)
                out.chars.extend(inner.chars * element.count)
                out.offsets.extend(inner.offsets * element.count)
            elif isinstance(atom, Run):
                head = _expand((Run(atom.text[:-1], atom.start),))
                out.chars.extend(head.chars)
                out.offsets.extend(head.offsets)
                out.chars.extend(atom.text[-1] * element.count)
                out.offsets.extend([atom.start + len(atom.text) - 1] * element.count)
    return out


def _parallel_entry(layer: Parallel) -> str:
    """A parallel layer as one entry of an expanded part: ``[``, its mixer symbols, ``]`` (only the
    runs count: anything else inside is a P019 error, and the entry is then never used)."""
    return "[" + "".join(e.text for e in layer.elements if isinstance(e, Run)) + "]"


def _part_span(part: Part) -> Span:
    start = (part.slash + 1) if part.slash is not None else 0
    return Span(start, max(start, part.end)) if part.end > start else Span.at(part.slash or 0)


def _mtp_problems(parts: tuple[Part, ...], expanded: list[_Expanded], source: Source) -> Iterator[Diagnostic]:
    """``|`` in MTP, empty MTP parts and parts that differ: one policy for all of them."""
    layers: list[str] = []
    for exp in expanded:
        for char, offset in zip(exp.chars, exp.offsets, strict=True):
            if char == PIPE:
                yield diag(
                    "P103",
                    "`|` cannot appear in a multi-token-prediction part",
                    Span.at(offset),
                    label="pipeline separator in MTP",
                    help="MTP runs on the last pipeline stage; put `|` in the main part only",
                )
        layers.append("".join(c for c in exp.chars if c != PIPE))
    for depth, (part, text) in enumerate(zip(parts[1:], layers, strict=True), start=1):
        if text:
            continue
        assert part.slash is not None
        trailing = not source.text[part.slash + 1 :].strip()
        yield diag(
            "P104",
            "trailing `/` opens an empty multi-token-prediction part"
            if trailing
            else f"multi-token-prediction part {depth} is empty",
            Span.at(part.slash),
            label="empty MTP part",
            help="every `/` must be followed by the layers of one MTP depth; remove the `/` if the model has no MTP"
            if depth == 1 and trailing
            else "every `/` must be followed by the layers of one MTP depth",
        )
    reference = next((i for i, text in enumerate(layers) if text), None)
    if reference is None:
        return
    for depth, text in enumerate(layers):
        if text and text != layers[reference]:
            yield diag(
                "P105",
                f"multi-token-prediction depth {depth + 1} is `{_clip(text)}`, "
                f"but depth {reference + 1} is `{_clip(layers[reference])}`",
                _part_span(parts[depth + 1]),
                label=f"depth {depth + 1}",
                help="each `/part` is one MTP depth, and every depth has the same layers",
                secondary=[Label(_part_span(parts[reference + 1]), f"depth {reference + 1}")],
            )


def _clip(text: str, width: int = 24) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
