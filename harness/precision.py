"""Reduced precision against the float32 transformers goldens: per-token cosine
similarity and masked-LM argmax agreement, on real tokens only.

Cosine is taken per token along the last axis (hidden states, token logits),
per row for outputs without a token axis (classifier logits), and over real
tokens of a row for span outputs (QA start/end logits). Head outputs also
report argmax agreement: the predicted class, token or span boundary.
"""

from dataclasses import dataclass

import keras
import numpy as np

from harness.golden import load_case
from harness.runner import backbone_from_golden, run_backbone_case, run_head_case, task_from_golden

POLICIES = ("float32", "bfloat16", "mixed_bfloat16", "float16", "mixed_float16")
# Hidden states, per real token: bf16 keeps 8 mantissa bits, fp16 11.
MIN_COSINE = {
    "float32": 0.999999,
    "bfloat16": 0.999,
    "mixed_bfloat16": 0.999,
    "float16": 0.9999,
    "mixed_float16": 0.9999,
}
# Head logits are vectors of 2 to 5 values (90 for the tiny masked LM), where
# one rounded value moves the cosine more than across 48 hidden units: bf16
# measured >= 0.99856 (jax and tensorflow, token classifier under
# mixed_bfloat16), fp16 >= 0.99997. The bf16 bar keeps a 3x margin on
# 1 - cosine; the decision the logits make is held by argmax agreement.
MIN_HEAD_COSINE = MIN_COSINE | {"bfloat16": 0.995, "mixed_bfloat16": 0.995}
# int8 (Keras' per-channel weights and per-token activations): the issue's
# bar, 0.995 per real token (KerasHub's int8 reaches 0.988 on a trained
# checkpoint). Tiny heads measured >= 0.9965 (QA start logits, torch): 0.99.
# int4 and float8 are reported, not judged: Keras' int4 blocks of 128 are
# wider than the tiny goldens' layers (measured cosine down to 0.21).
MIN_COSINE["int8_from_float32"] = 0.995
MIN_HEAD_COSINE["int8_from_float32"] = 0.99
QUANTIZATION_MODES = ("int8", "int4", "float8")
MIN_ARGMAX_AGREEMENT = 0.99
SPAN_OUTPUTS = ("start_logits", "end_logits")
# The goldens measured: the deepest tiny backbone and every head.
BACKBONE_CASE = "backbone_deep_padded"
HEAD_CASES = (
    "head_masked_lm",
    "head_masked_lm_small_norms",
    "head_text_classifier",
    "head_token_classifier",
    "head_question_answerer",
    "head_multiple_choice",
)


@dataclass
class PrecisionResult:
    case_id: str
    policy: str
    output: str
    min_cosine: float
    worst_index: tuple
    argmax_agreement: float | None  # head outputs only
    compared: int
    masked_lm: bool = False

    @property
    def min_cosine_allowed(self):
        """The bar this result is judged by; None for a mode only reported."""
        bars = MIN_COSINE if self.output.startswith("hidden_states/") else MIN_HEAD_COSINE
        return bars.get(self.policy)

    def line(self):
        agreement = "" if self.argmax_agreement is None else f", argmax agreement {self.argmax_agreement:.4f}"
        return (
            f"{self.case_id} {self.policy} {self.output}: min cosine {self.min_cosine:.6f} at {self.worst_index} "
            f"over {self.compared} vectors{agreement}"
        )


def cosines(actual, expected, axis=-1):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    dot = (actual * expected).sum(axis)
    norms = np.linalg.norm(actual, axis=axis) * np.linalg.norm(expected, axis=axis)
    return dot / np.maximum(norms, np.finfo(np.float64).tiny)


def output_cosines(name, actual, expected, real_token_mask):
    """Cosines of one output and a boolean array of which ones count."""
    if name in SPAN_OUTPUTS:  # [batch, length]: one vector per row, over its real tokens
        mask = real_token_mask.astype(bool)
        actual, expected = np.where(mask, actual, 0.0), np.where(mask, expected, 0.0)
        return cosines(actual, expected), np.ones(actual.shape[0], bool)
    values = cosines(actual, expected)
    if real_token_mask is None or real_token_mask.shape != values.shape:
        return values, np.ones(values.shape, bool)
    return values, real_token_mask.astype(bool)


def measure(case_id, policy, quantize=None):
    """Run a golden case under a dtype policy (and `quantize` mode: "int8",
    "int4", "float8"); one `PrecisionResult` per float output."""
    golden = load_case(case_id)
    if golden.kind == "backbone":
        model = backbone_from_golden(golden, dtype=policy)
    else:
        model = task_from_golden(golden, dtype=policy)
    if quantize:
        model.quantize(quantize)
        policy = f"{quantize}_from_{policy}"
    if golden.kind == "backbone":
        outputs = run_backbone_case(golden, model)
    else:
        outputs = run_head_case(golden, model)
    results = []
    for name, expected in sorted(golden.outputs.items()):
        if not np.issubdtype(expected.value.dtype, np.floating):
            continue
        mask = golden.inputs.get(expected.real_token_mask) if expected.real_token_mask else None
        actual = np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(outputs[name], "float32")))
        values, counted = output_cosines(name, actual, expected.value, mask)
        values = np.where(counted, values, np.inf)
        worst = np.unravel_index(np.argmin(values), values.shape)
        agreement = None
        if golden.kind == "head":
            if name in SPAN_OUTPUTS:
                actual, expected_value = (np.where(mask.astype(bool), v, -np.inf) for v in (actual, expected.value))
            else:
                expected_value = expected.value
            agreement = float((actual.argmax(-1) == expected_value.argmax(-1))[counted].mean())
        results.append(
            PrecisionResult(
                case_id=case_id,
                policy=policy,
                output=name,
                min_cosine=float(values[worst]),
                worst_index=tuple(int(i) for i in worst),
                argmax_agreement=agreement,
                compared=int(counted.sum()),
                masked_lm=golden.provenance.get("hf_class") == "DistilBertForMaskedLM",
            )
        )
    return results


def failures(results):
    """The results below the bars, each as a line saying what and where."""
    lines = []
    for result in results:
        if result.min_cosine_allowed is None:
            continue
        if result.min_cosine < result.min_cosine_allowed:
            lines.append(f"{result.line()}: cosine below {result.min_cosine_allowed}")
        # Only the masked LM's: the tiny QA goldens have near-tied span logits
        # whose argmax flips within bf16/fp16 rounding (reported, not judged).
        # int8's per-token activation scales flip 1 of the tiny MLM's 9 positions.
        if result.masked_lm and "int8" not in result.policy and result.argmax_agreement < MIN_ARGMAX_AGREEMENT:
            lines.append(f"{result.line()}: argmax agreement below {MIN_ARGMAX_AGREEMENT}")
    return lines
