"""The transformers facts the target profiles state, verified by running transformers (tiny, CPU).

Each test runs the consumer and checks that the profile predicts what it did.  Skipped when the
``backends`` extra (torch, transformers) is not installed.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from patternc.api import parse
from patternc.targets import check_target, verdict

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

NO_SEQ_LENGTH = (
    "`get_seq_length` can only be called on Attention layers, "
    "and the current Cache seem to only contain LinearAttention layers."
)
IDS = [[5, 6, 7, 8]]


def _nemotron_h(pattern: str, **extra: Any) -> Any:
    config = transformers.NemotronHConfig(
        vocab_size=64, hidden_size=32, hybrid_override_pattern=pattern, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, intermediate_size=48, ssm_state_size=8, mamba_num_heads=4,
        mamba_head_dim=16, n_groups=2, chunk_size=8, n_routed_experts=4, num_experts_per_tok=2,
        moe_intermediate_size=16, moe_shared_expert_intermediate_size=16, **extra,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.NemotronHForCausalLM(config).eval()


def _forward(model: Any, use_cache: bool | None) -> BaseException | None:
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model(torch.tensor(IDS), use_cache=use_cache)
    except Exception as error:  # the fact under test is which exception, if any
        return error
    return None


@pytest.mark.parametrize("pattern", ["M-M*-", "MEM*E", "*-*-", "M-M-", "MEME", "MM", "--"])
def test_nemotron_h_needs_attention_when_the_cache_is_on(pattern: str) -> None:
    model = _nemotron_h(pattern)
    predicted = "P306" in [d.code for d in check_target("transformers-nemotron_h", parse(pattern))]
    with_cache, default, without = _forward(model, True), _forward(model, None), _forward(model, False)
    assert without is None
    if predicted:
        for error in (with_cache, default):
            assert isinstance(error, ValueError) and str(error) == NO_SEQ_LENGTH
    else:
        assert with_cache is None and default is None


def test_nemotron_h_generate_needs_attention() -> None:
    model = _nemotron_h("MM")
    with pytest.raises(ValueError, match="can only be called on Attention layers"):
        model.generate(torch.tensor(IDS), max_new_tokens=1, do_sample=False)
    model.generate(torch.tensor(IDS), max_new_tokens=1, do_sample=False, use_cache=False)


def test_pure_m_nemotron_h_is_exactly_mamba2() -> None:
    source = _nemotron_h("MMM")
    config = transformers.Mamba2Config(
        vocab_size=64, hidden_size=32, num_hidden_layers=3, num_heads=4, head_dim=16, state_size=8, n_groups=2,
        chunk_size=8, expand=2, conv_kernel=4, use_conv_bias=True, use_bias=False, layer_norm_epsilon=1e-5,
        tie_word_embeddings=False,
    )  # fmt: skip
    target = transformers.Mamba2ForCausalLM(config).eval()
    renamed = {key.replace("model.", "backbone.", 1): value for key, value in source.state_dict().items()}
    target.load_state_dict(renamed, strict=True)
    ids = torch.tensor([[5, 9, 11, 3, 60, 7, 8, 21, 33]])
    with torch.no_grad():
        assert torch.equal(source(ids, use_cache=False).logits, target(ids, use_cache=False).logits)
        assert target(ids, use_cache=True).logits is not None  # Mamba2 has its own cache: no P306 there
    assert verdict(check_target("transformers-mamba2", parse("MMM"))) == "ok"


@pytest.mark.parametrize("pattern", ["MG*", "M*/*G"])
def test_nemotron_h_alphabet(pattern: str) -> None:
    main, _, mtp = pattern.partition("/")
    extra = {"num_nextn_predict_layers": 1, "mtp_hybrid_override_pattern": mtp} if mtp else {}
    with pytest.raises(KeyError, match="'G'"):
        transformers.NemotronHConfig(hybrid_override_pattern=main, **extra)
    found = [d.code for d in check_target("transformers-nemotron_h", parse(pattern))]
    assert found == (["P302", "P305"] if mtp else ["P301"])


def test_nemotron_h_accepts_but_ignores_mtp() -> None:
    model = _nemotron_h("M*E", num_nextn_predict_layers=1, mtp_hybrid_override_pattern="M-")
    assert model.config.mtp_layers_block_type == ["linear_attention", "mlp"]
    assert not [name for name, _ in model.named_parameters() if "mtp" in name]
    assert "mtp.*" in transformers.NemotronHForCausalLM._keys_to_ignore_on_load_unexpected
    assert [d.code for d in check_target("transformers-nemotron_h", parse("M*E/M-"))] == ["P305", "P307"]


MAMBA = {"mamba_n_heads": 4, "mamba_d_state": 8, "mamba_n_groups": 1, "mamba_chunk_size": 8}


def test_bamba_and_granite_need_attention_when_the_cache_is_on() -> None:
    common = {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, **MAMBA}  # fmt: skip
    cases = [
        (transformers.BambaForCausalLM(transformers.BambaConfig(attn_layer_indices=None, **common)), "M-M-", "bamba"),
        (transformers.BambaForCausalLM(transformers.BambaConfig(attn_layer_indices=[1], **common)), "M-*-", "bamba"),
        (
            transformers.GraniteMoeHybridForCausalLM(
                transformers.GraniteMoeHybridConfig(
                    layer_types=["mamba", "mamba"], num_local_experts=4, shared_intermediate_size=16, **common
                )
            ),
            "MEME",
            "granitemoehybrid",
        ),
    ]
    for model, pattern, target in cases:
        error = _forward(model.eval(), True)
        predicted = "P306" in [d.code for d in check_target(target, parse(pattern))]
        assert (isinstance(error, ValueError) and str(error) == NO_SEQ_LENGTH) if predicted else error is None
        assert _forward(model, False) is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: transformers.BambaConfig(hidden_size=48, mamba_n_heads=4, mamba_d_head=16, mamba_expand=2),
         "The dimensions for the Mamba head state do not match the model intermediate_size"),
        (lambda: transformers.GraniteMoeHybridConfig(hidden_size=48, mamba_n_heads=4, mamba_d_head=16, mamba_expand=2),
         "The dimensions for the Mamba head state do not match the model intermediate_size"),
        (lambda: transformers.Mamba2Config(hidden_size=48, num_heads=4, head_dim=16, expand=2),
         "hidden_size \\* expand \\(96\\) must equal num_heads \\* head_dim \\(64\\)"),
    ],
)  # fmt: skip
def test_mamba_inner_size_must_be_a_multiple_of_hidden(build: Any, message: str) -> None:
    """P311's fact: 4 heads x 16 = 64 is no integer multiple of hidden_size 48."""
    with pytest.raises(Exception, match=message):
        build()
