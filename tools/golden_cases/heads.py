"""Task-head cases: each `DistilBertFor*` class on a tiny config, head weights
in the golden, logits compared on real tokens."""

import numpy as np

from harness.golden import Golden, GoldenOutput
from tools.golden_cases import register, seed_for
from tools.golden_cases.backbone import hf_config_dict
from tools.golden_cases.head_table import TIED_WEIGHTS, architecture
from tools.golden_cases.reference import (
    FLOAT32_HIDDEN_ATOL,
    deterministic_torch,
    padded_token_ids,
    seeded_state_dict,
)

LOGITS_REASON = "float32 on CPU: logits of a tiny model differ only by rounding (~1e-6)"
CONFIG = dict(vocab_size=90, dim=32, n_layers=2, n_heads=4, hidden_dim=48, max_position_embeddings=20)
# Head -> (the transformers class, from the library's head table; its config's extra fields).
HEADS = {
    "text_classifier": (architecture("DistilBertTextClassifier"), dict(num_labels=3)),
    "masked_lm": (architecture("DistilBertMaskedLM"), {}),
    "token_classifier": (architecture("DistilBertTokenClassifier"), dict(num_labels=5)),
    "question_answerer": (architecture("DistilBertQuestionAnswerer"), {}),
    "multiple_choice": (architecture("DistilBertMultipleChoice"), {}),
}


def output(value, mask=None):
    return GoldenOutput(
        np.asarray(value, np.float32),
        atol=FLOAT32_HIDDEN_ATOL,
        rtol=0.0,
        tolerance_reason=LOGITS_REASON,
        real_token_mask=mask,
    )


def build_head_case(case, head, small_norms=None):
    import torch
    import transformers
    from transformers import DistilBertConfig

    class_name, extra = HEADS[head]
    config = DistilBertConfig(attn_implementation="eager", **CONFIG, **extra)
    deterministic_torch()
    model = getattr(transformers, class_name)(config).eval()
    # The MLM projection is tied to the word embeddings: draw it once.
    weights = seeded_state_dict(model, seed_for(f"head_{head}"), keep=TIED_WEIGHTS, small_norms=small_norms)
    rng = np.random.default_rng(case.seed)
    if head == "multiple_choice":
        ids, mask = padded_token_ids(rng, config.vocab_size, [9, 4, 7, 9, 2, 6], 9)
        ids, mask = ids.reshape(2, 3, 9), mask.reshape(2, 3, 9)
    else:
        ids, mask = padded_token_ids(rng, config.vocab_size, [10, 6, 1], 10)
    inputs = {"token_ids": ids, "padding_mask": mask}
    with torch.no_grad():
        result = model(input_ids=torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(mask).long())
    if head == "masked_lm":
        positions = np.array([[1, 4, 9], [0, 2, 5], [0, 0, 0]], np.int32)
        inputs["mask_positions"] = positions
        logits = np.take_along_axis(result.logits.numpy(), positions[:, :, None], axis=1)
        outputs = {"logits": output(logits)}
    elif head == "token_classifier":
        outputs = {"logits": output(result.logits.numpy(), "padding_mask")}
    elif head == "question_answerer":
        outputs = {
            "start_logits": output(result.start_logits.numpy(), "padding_mask"),
            "end_logits": output(result.end_logits.numpy(), "padding_mask"),
        }
    else:
        outputs = {"logits": output(result.logits.numpy())}
    return Golden(
        case_id=case.case_id,
        kind=case.kind,
        provenance={"head": head, "hf_class": class_name},
        config=hf_config_dict(config),
        inputs=inputs,
        outputs=outputs,
        weights=weights,
    )


for _head in HEADS:
    register(f"head_{_head}", "head", lambda case, h=_head: build_head_case(case, h))
# The output LayerNorms drawn small (see backbone.SMALL_NORM_CONFIGS): the head's LayerNorm epsilon shows.
register(
    "head_masked_lm_small_norms",
    "head",
    lambda case: build_head_case(case, "masked_lm", small_norms=r"embeddings\.LayerNorm|output_layer_norm"),
)
