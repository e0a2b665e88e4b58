"""Hypothesis strategies for *valid* patterns in each dialect.

Every strategy draws a ``Generated``: the text to parse together with what it must mean (the
flat main layers, the stages and the MTP block), computed independently of patternc.  Rules
respected: the main part has at least one layer; standard attention ``*`` is never mixed with
``D``/``+`` (in the main part or MTP); every MTP part is non-empty, has no ``|`` and expands to
the same layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

HF_ALPHABET = "M*-E"
MEGATRON_NON_ATTENTION = "MG-E"
STRUCTURAL = set("|/(){}#") | set("0123456789")


@dataclass(frozen=True)
class Generated:
    text: str
    dialect: str
    stages: tuple[str, ...]
    """The main layers of each pipeline stage (one stage when there is no ``|``)."""
    mtp: str = ""
    """The layers of one MTP depth ('' when there is none)."""
    depths: int = 0

    @property
    def flat(self) -> str:
        return "".join(self.stages)

    @property
    def megatron(self) -> str:
        return "|".join(self.stages) + ("/" + self.mtp) * self.depths


@st.composite
def hf_patterns(draw: st.DrawFn) -> Generated:
    """transformers' ``hybrid_override_pattern``: a non-empty string over ``M * - E``."""
    text = draw(st.text(alphabet=HF_ALPHABET, min_size=1, max_size=60))
    return Generated(text, "hf", (text,))


def _alphabet(draw: st.DrawFn) -> str:
    """Megatron's alphabet minus one attention family: ``*`` or the MLA family (``D``, ``+``)."""
    attention = draw(st.sampled_from(["*", "D+", "D", "+"]))
    return MEGATRON_NON_ATTENTION + attention


@st.composite
def megatron_patterns(draw: st.DrawFn, alphabet: str | None = None) -> Generated:
    """Megatron-Core's unified string: ``|`` stages (empty ones allowed) and ``/`` MTP depths."""
    alphabet = alphabet or _alphabet(draw)
    stages = draw(st.lists(st.text(alphabet=alphabet, max_size=20), min_size=1, max_size=4))
    if not "".join(stages):
        stages[draw(st.integers(0, len(stages) - 1))] = draw(st.text(alphabet=alphabet, min_size=1, max_size=20))
    depths = draw(st.integers(0, 3))
    mtp = draw(st.text(alphabet=alphabet, min_size=1, max_size=6)) if depths else ""
    gen = Generated("", "megatron", tuple(stages), mtp, depths)
    return Generated(gen.megatron, "megatron", tuple(stages), mtp, depths)


# --- the patternc dialect: a small tree rendered with whitespace, comments and repetition ---------

# An item is ("sym", c) | ("rep", c, n) | ("group", items, n | None).
Item = tuple


def _items(alphabet: str, depth: int) -> st.SearchStrategy[list[Item]]:
    symbol = st.sampled_from(alphabet).map(lambda c: ("sym", c))
    repeated = st.tuples(st.just("rep"), st.sampled_from(alphabet), st.integers(1, 5))
    leaves = st.one_of(symbol, symbol, repeated)
    if depth == 0:
        return st.lists(leaves, min_size=1, max_size=5)
    group = st.tuples(st.just("group"), _items(alphabet, depth - 1), st.one_of(st.none(), st.integers(1, 4)))
    return st.lists(st.one_of(leaves, leaves, group), min_size=1, max_size=5)


def _expand(items: list[Item]) -> str:
    out = []
    for item in items:
        if item[0] == "sym":
            out.append(item[1])
        elif item[0] == "rep":
            out.append(item[1] * item[2])
        else:
            inner = _expand(item[1])
            out.append(inner * (item[2] or 1))
    return "".join(out)


_COMMENT_CHARS = st.characters(blacklist_characters="\n", blacklist_categories=("Cs",))
_TRIVIA = st.one_of(
    st.just(""),
    st.just(""),
    st.sampled_from([" ", "  ", "\t", "\n", " \n  ", "\r\n"]),
    st.text(_COMMENT_CHARS, max_size=12).map(lambda body: f" #{body}\n"),
)


def _render(draw: st.DrawFn, items: list[Item]) -> str:
    pieces = []
    for item in items:
        pieces.append(draw(_TRIVIA))
        if item[0] == "sym":
            pieces.append(item[1])
        elif item[0] == "rep":
            pieces.append(f"{item[1]}{{{item[2]}}}")
        else:
            body = _render(draw, item[1])
            pieces.append(f"({body}{draw(_TRIVIA)})" + ("" if item[2] is None else f"{{{item[2]}}}"))
    return "".join(pieces)


@st.composite
def patternc_patterns(draw: st.DrawFn, alphabet: str | None = None) -> Generated:
    """The patternc dialect: Megatron's features plus trivia and nested repetition."""
    alphabet = alphabet or _alphabet(draw)
    stage_items = draw(st.lists(_items(alphabet, 2), min_size=1, max_size=3))
    stages = [_expand(items) for items in stage_items]
    depths = draw(st.integers(0, 3))
    mtp_items = draw(_items(alphabet, 1)) if depths else []
    mtp = _expand(mtp_items)
    text = "|".join(_render(draw, items) for items in stage_items)
    for _ in range(depths):
        text += "/" + _render(draw, mtp_items)
    text += draw(_TRIVIA).rstrip("\n")  # a final comment needs no newline
    return Generated(text, "patternc", tuple(stages), mtp, depths)


def patterns(dialect: str) -> st.SearchStrategy[Generated]:
    return {"hf": hf_patterns(), "megatron": megatron_patterns(), "patternc": patternc_patterns()}[dialect]


any_pattern = st.one_of(hf_patterns(), megatron_patterns(), patternc_patterns())

PATTERN_CHARS = "MG*D+-E|/(){}#0123456789 \nXm∗x"
"""Characters a fuzzer should favour: every symbol, every structural character, near-misses."""

pattern_like_text = st.text(alphabet=PATTERN_CHARS, max_size=80)
"""Text biased towards the pattern alphabet: mostly near-valid inputs, many syntax errors."""
