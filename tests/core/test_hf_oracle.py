"""Differential tests: ``--dialect hf`` against transformers' real ``NemotronHConfig`` as the oracle.

``patternc.analyze(s, "hf").ok`` must say exactly whether transformers accepts
``hybrid_override_pattern=s``, and the layers must agree: ``to_layers_block_type(p.flat)`` equals
``config.layers_block_type``.  Where the two deliberately differ, the difference is pinned below as an
explicit expected-difference case (``test_expected_difference_*``), so a change on either side shows up.

How transformers 5.x (checked against 5.24) behaves, as pinned here:

* ``hybrid_override_pattern`` is a backward-compatibility input: ``__post_init__`` maps each character
  through ``{"M", "E", "*", "-"}`` into ``layers_block_type`` and drops the string; the
  ``hybrid_override_pattern`` property rebuilds it from the list.
* Any other character (lowercase ``m``, ``X``, ``G``, ``|``, ``/``, whitespace, look-alikes such as
  U+2217) raises a bare ``KeyError`` naming the character; there is no message beyond that.
* The empty string is accepted and gives a model with no layers (``layers_block_type == []``).
* ``num_hidden_layers`` is deprecated and ignored: the layer count is ``len(layers_block_type)``;
  a mismatch only logs a warning.
* ``-`` (MLP) is a layer type like the others (``mlp``); an all-MLP pattern is accepted.
* The legacy names ``mamba``/``attention`` in ``layers_block_type`` and ``mtp_layers_block_type`` are
  remapped to ``linear_attention``/``full_attention`` (``remap_legacy_layer_types``).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import patternc
from patternc import Vocabulary, to_layers_block_type
from patternc.kinds import BUILTIN

transformers = pytest.importorskip("transformers")
configuration_utils = pytest.importorskip("transformers.configuration_utils")
NemotronHConfig = transformers.NemotronHConfig

HF_ALPHABET = "M*-E"
# Characters a user may type that transformers does not accept: lowercase and look-alike symbols,
# Megatron-only symbols and separators, patternc-only syntax, whitespace and Unicode look-alikes.
OTHER_CHARS = "meX xG D+|/(){}#04\t\n_~\u2217\u2013\uff2d\u039c"

ORACLE = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Mostly well-formed strings (so that acceptance is exercised), and strings with stray characters.
hf_strings = st.text(alphabet=HF_ALPHABET, min_size=1, max_size=120)
mixed_strings = st.one_of(
    hf_strings,
    st.text(alphabet=HF_ALPHABET + OTHER_CHARS, min_size=1, max_size=40),
    st.builds(
        lambda head, bad, tail: head + bad + tail,
        st.text(alphabet=HF_ALPHABET, max_size=30),
        st.sampled_from(OTHER_CHARS),
        st.text(alphabet=HF_ALPHABET, max_size=30),
    ),
)


@pytest.fixture(autouse=True)
def _quiet_transformers() -> None:
    transformers.logging.set_verbosity_error()


def hf_layers(text: str, **extra: object) -> list[str] | None:
    """transformers' ``layers_block_type`` for ``hybrid_override_pattern=text``, or None if refused."""
    try:
        config = NemotronHConfig(hybrid_override_pattern=text, num_hidden_layers=len(text), **extra)
    except KeyError:
        return None
    return list(config.layers_block_type)


# --- the oracle: acceptance and layers agree --------------------------------------------------


@ORACLE
@given(mixed_strings)
def test_hf_dialect_accepts_exactly_what_transformers_accepts(text: str) -> None:
    analysis = patternc.analyze(text, "hf")
    expected = hf_layers(text)
    assert analysis.ok == (expected is not None), (text, [d.code for d in analysis.diagnostics])
    if expected is not None:
        assert analysis.pattern is not None
        assert analysis.pattern.flat == text
        assert to_layers_block_type(analysis.pattern.flat) == expected
    else:
        assert analysis.pattern is None
        # patternc refuses for the reason transformers trips on, a character outside ``M*-E``, named
        # (unknown symbol, Megatron-only symbol, whitespace, comment, group, pipe, MTP, stray syntax);
        # follow-on diagnostics (e.g. P104 for the empty part after a stray `/`) may come with it.
        codes = {d.code for d in analysis.diagnostics if d.severity is patternc.Severity.ERROR}
        assert codes & {"P001", "P002", "P003", "P004", "P005", "P006", "P007", "P008", "P009"}, (text, codes)


@ORACLE
@given(hf_strings)
def test_config_round_trips_through_patternc(text: str) -> None:
    config = NemotronHConfig(hybrid_override_pattern=text, num_hidden_layers=len(text))
    assert config.hybrid_override_pattern == text
    assert config.num_hidden_layers == len(text) == patternc.parse(text, "hf").num_layers
    back = patternc.from_layers_block_type(config.layers_block_type)
    assert back.flat == text
    # and the list patternc emits builds the same config as the string
    listed = NemotronHConfig(layers_block_type=to_layers_block_type(text))
    assert listed.layers_block_type == config.layers_block_type


@pytest.mark.parametrize(
    "text",
    [
        "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-",  # Nemotron-H-8B
        "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME",  # Nemotron 3 Nano 30B-A3B
        "M",
        "*",
        "E",
        "-",
    ],
)
def test_published_and_minimal_patterns_agree(text: str) -> None:
    analysis = patternc.analyze(text, "hf")
    assert analysis.ok
    assert analysis.pattern is not None
    assert to_layers_block_type(analysis.pattern.flat) == hf_layers(text)


# --- explicit expected differences and pinned transformers behaviour -----------------------------


def test_expected_difference_empty_pattern() -> None:
    """transformers builds a model with no layers from ``""``; patternc refuses it (P101).

    Intentional: a layer stack with no layer is never what a user meant, and transformers would only
    fail later (or silently build an embedding-only model).
    """
    config = NemotronHConfig(hybrid_override_pattern="", num_hidden_layers=0)
    assert config.layers_block_type == []
    assert config.num_hidden_layers == 0
    analysis = patternc.analyze("", "hf")
    assert not analysis.ok
    assert [d.code for d in analysis.diagnostics] == ["P101"]


def test_expected_difference_empty_mtp_pattern() -> None:
    """transformers accepts ``mtp_hybrid_override_pattern=""`` with a depth, giving empty MTP layers;
    patternc refuses an empty MTP part (P104)."""
    config = NemotronHConfig(hybrid_override_pattern="M-", mtp_hybrid_override_pattern="", num_nextn_predict_layers=1)
    assert config.mtp_layers_block_type == []
    analysis = patternc.analyze("M-/", "megatron")
    assert not analysis.ok
    assert "P104" in {d.code for d in analysis.diagnostics}


@pytest.mark.parametrize("text", ["m-m*-", "M-m", "e", "M-M*-\n", " M", "M E", "MX", "M\u2217-", "\uff2d-"])
def test_stray_characters_are_a_bare_key_error_in_transformers_and_a_diagnostic_in_patternc(text: str) -> None:
    """Both refuse; transformers says only ``KeyError: 'm'``, patternc points at the character."""
    bad = next(c for c in text if c not in HF_ALPHABET)
    with pytest.raises(KeyError) as error:
        NemotronHConfig(hybrid_override_pattern=text, num_hidden_layers=len(text))
    assert error.value.args == (bad,)
    analysis = patternc.analyze(text, "hf")
    assert not analysis.ok
    first = analysis.diagnostics[0]
    assert first.code in {"P001", "P003"}
    assert first.span is not None and text[first.span.start] == bad


@pytest.mark.parametrize("text", ["MG*-", "M+-", "MD-", "M-|M-", "M-/*E", "(M-){2}", "M- # c"])
def test_megatron_and_patternc_syntax_is_not_hybrid_override_pattern(text: str) -> None:
    """Megatron's extra symbols, ``|``, ``/`` and patternc's repetition are refused by both in ``hf``."""
    assert hf_layers(text) is None
    assert not patternc.analyze(text, "hf").ok


@pytest.mark.parametrize(
    ("text", "warnings"),
    [("-", ["P202"]), ("--", ["P202"]), ("E", ["P202"]), ("--E", ["P201", "P202"]), ("M-ME", ["P201"])],
)
def test_expected_difference_patternc_warns_where_transformers_is_silent(text: str, warnings: list[str]) -> None:
    """``-`` is a real layer type (``mlp``) for transformers, and it mixes ``-`` with ``E`` freely.

    patternc accepts the same strings (``ok``) but warns: P202 when no layer mixes tokens, P201 when
    dense MLP and MoE layers share a model (no released checkpoint does).  Warnings never change ``ok``.
    """
    assert hf_layers(text) == to_layers_block_type(text)
    analysis = patternc.analyze(text, "hf")
    assert analysis.ok
    assert sorted(d.code for d in analysis.diagnostics) == warnings
    assert all(d.severity is patternc.Severity.WARNING for d in analysis.diagnostics)


def test_transformers_ignores_num_hidden_layers() -> None:
    """Not a difference, pinned because patternc's backend relies on it: the count is the pattern's."""
    config = NemotronHConfig(hybrid_override_pattern="M-M*-", num_hidden_layers=7)
    assert config.num_hidden_layers == 5
    assert len(config.layers_block_type) == 5


def test_transformers_prefers_an_explicit_list_over_the_pattern() -> None:
    """Given both, transformers silently keeps ``layers_block_type`` and drops the pattern."""
    config = NemotronHConfig(layers_block_type=["mlp"], hybrid_override_pattern="M*")
    assert config.layers_block_type == ["mlp"]


def test_transformers_validates_names_in_lists_but_not_the_pattern_path() -> None:
    """Lists are checked by the strict-dataclass validator; patternc's P014 covers the same names."""
    with pytest.raises(Exception, match="invalid types") as error:
        NemotronHConfig(layers_block_type=["linear_attention", "bogus"])
    assert not isinstance(error.value, KeyError)
    with pytest.raises(patternc.PatternError) as ours:
        patternc.from_layers_block_type(["linear_attention", "bogus"])
    assert [d.code for d in ours.value.diagnostics] == ["P014"]


def test_expected_difference_mtp_list_is_unchecked_without_mtp_depths() -> None:
    """With ``num_nextn_predict_layers=0`` transformers accepts any ``mtp_layers_block_type``;
    patternc reads the names regardless of depth and refuses an unknown one."""
    config = NemotronHConfig(mtp_layers_block_type=["bogus"], num_nextn_predict_layers=0)
    assert config.mtp_layers_block_type == ["bogus"]
    with pytest.raises(patternc.PatternError):
        patternc.from_layers_block_type(["linear_attention"], ["bogus"], 0)


# --- multi-token prediction -------------------------------------------------------------------


@ORACLE
@given(main=hf_strings, mtp=st.text(alphabet=HF_ALPHABET, min_size=1, max_size=8), depths=st.integers(1, 3))
def test_mtp_pattern_round_trips(main: str, mtp: str, depths: int) -> None:
    unified = main + ("/" + mtp) * depths
    analysis = patternc.analyze(unified, "megatron")
    if not analysis.ok:
        # patternc's MTP checks (e.g. P106) may refuse what transformers builds; say which
        codes = {d.code for d in analysis.diagnostics if d.severity is patternc.Severity.ERROR}
        assert codes <= {"P106"}, (unified, codes)
        return
    pattern = analysis.pattern
    assert pattern is not None and pattern.mtp is not None
    config = NemotronHConfig(
        hybrid_override_pattern=main, mtp_hybrid_override_pattern=mtp, num_nextn_predict_layers=depths
    )
    assert config.layers_block_type == to_layers_block_type(pattern.flat)
    assert config.mtp_layers_block_type == to_layers_block_type(pattern.mtp.flat)
    assert config.num_nextn_predict_layers == pattern.mtp.depths == depths
    assert config.mtp_hybrid_override_pattern == mtp
    back = patternc.from_layers_block_type(
        config.layers_block_type, config.mtp_layers_block_type, config.num_nextn_predict_layers
    )
    assert patternc.to_megatron(back) == unified


# --- legacy vocabulary --------------------------------------------------------------------------


def test_patternc_legacy_names_are_exactly_what_transformers_remaps() -> None:
    remap = configuration_utils._LEGACY_LAYER_TYPE_REMAP
    for info in BUILTIN:
        if info.hf_legacy_name is None:
            continue
        assert remap.get(info.hf_legacy_name, info.hf_legacy_name) == info.hf_name, info


@ORACLE
@given(main=hf_strings, mtp=st.text(alphabet=HF_ALPHABET, min_size=1, max_size=6))
def test_legacy_lists_are_remapped_to_the_current_names(main: str, mtp: str) -> None:
    config = NemotronHConfig(
        layers_block_type=to_layers_block_type(main, Vocabulary.LEGACY),
        mtp_layers_block_type=to_layers_block_type(mtp, Vocabulary.LEGACY),
        num_nextn_predict_layers=1,
    )
    assert config.layers_block_type == to_layers_block_type(main, Vocabulary.CURRENT)
    assert config.mtp_layers_block_type == to_layers_block_type(mtp, Vocabulary.CURRENT)
    # patternc reads both vocabularies to the same pattern
    legacy = patternc.from_layers_block_type(to_layers_block_type(main, Vocabulary.LEGACY))
    assert legacy.flat == patternc.from_layers_block_type(config.layers_block_type).flat == main
