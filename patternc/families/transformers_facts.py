"""Facts shared by the transformers families' target profiles (checked against transformers 5.24)."""

NO_SEQ_LENGTH = (
    "transformers raises: ValueError: `get_seq_length` can only be called on Attention layers, "
    "and the current Cache seem to only contain LinearAttention layers."
)
EXPAND_FAILURE = (
    "transformers raises (validate_architecture): ValueError: The dimensions for the Mamba head state "
    "do not match the model intermediate_size"
)
