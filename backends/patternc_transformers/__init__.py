"""The transformers backend: the IR as transformers' ``nemotron_h`` configuration fields.

Imported only through the ``patternc.backends`` entry point, never by the core: ``emit`` needs
nothing heavy, ``config`` imports transformers.  Later issues grow this package into
``patternc build`` (whole configs and converted weights); this module holds the layer-stack part.
"""

from __future__ import annotations

from typing import Any

from patternc.convert import Vocabulary, to_layers_block_type
from patternc.ir import Pattern


class TransformersBackend:
    name = "transformers"
    description = "transformers NemotronHConfig layer fields (layers_block_type, MTP lists)"

    def emit(self, pattern: Pattern, /, **options: Any) -> dict[str, Any]:
        """``layers_block_type`` (and the MTP fields) in the vocabulary transformers 5.x expects."""
        vocabulary = Vocabulary(options.get("vocabulary", Vocabulary.CURRENT))
        fields: dict[str, Any] = {
            "model_type": "nemotron_h",
            "layers_block_type": to_layers_block_type(pattern.flat, vocabulary),
            "num_hidden_layers": pattern.num_layers,
            "num_nextn_predict_layers": 0,
        }
        if pattern.mtp is not None:
            fields["mtp_layers_block_type"] = to_layers_block_type(pattern.mtp.flat, vocabulary)
            fields["num_nextn_predict_layers"] = pattern.mtp.depths
        return fields

    def config(self, pattern: Pattern, /, **overrides: Any) -> Any:
        """A real ``transformers.NemotronHConfig`` for the pattern (imports transformers)."""
        from transformers import NemotronHConfig

        fields = self.emit(pattern)
        fields.pop("model_type")
        return NemotronHConfig(**{**fields, **overrides})


backend = TransformersBackend()
