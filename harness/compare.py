"""Compare an output with its golden and explain any difference.

The measure is the max absolute error over real (unpadded) tokens; a failure
report names the case, the output, how many elements differ, max and mean
absolute error, the worst elements with both values, the tolerance and its
reason, and the command that reruns just this case on this backend.
"""

from dataclasses import dataclass, field

import numpy as np

WORST_SHOWN = 5


@dataclass
class Comparison:
    case_id: str
    output: str
    backend: str
    atol: float
    rtol: float
    tolerance_reason: str
    shape: tuple
    compared: int = 0
    mismatched: int = 0
    max_abs_error: float = 0.0
    mean_abs_error: float = 0.0
    worst: list = field(default_factory=list)  # (index, actual, expected, abs error)
    problem: str | None = None  # shape/dtype problems that make values meaningless
    tier: str = "default"  # the test tier that holds the case: its tox env runs it
    norm: float | None = None  # L2 norm of the expected values, for a norm-relative output (gradients)

    @property
    def relative_error(self):
        """max abs error / norm of the expected tensor (norm-relative outputs)."""
        return None if self.norm is None else self.max_abs_error / max(self.norm, 1e-30)

    @property
    def passed(self):
        return self.problem is None and self.mismatched == 0

    def rerun_command(self):
        env = self.backend if self.tier == "default" else f"{self.backend}-{self.tier}"
        return f'tox -e {env} -- -k "{self.case_id}"'

    def report(self):
        head = f"case '{self.case_id}', output '{self.output}', backend {self.backend}"
        if self.problem:
            return f"{head}: {self.problem}\n  rerun: {self.rerun_command()}"
        verdict = "matches" if self.passed else "DOES NOT MATCH"
        lines = [
            f"{head} {verdict} the transformers golden",
            f"  compared {self.compared} values on real tokens of shape {self.shape}; "
            f"{self.mismatched} outside tolerance",
            f"  max abs error {self.max_abs_error:.3e}, mean abs error {self.mean_abs_error:.3e}"
            + ("" if self.norm is None else f", {self.relative_error:.3e} of the golden's L2 norm {self.norm:.3e}"),
            f"  tolerance |actual - expected| <= {self.atol:g} + {self.rtol:g} * |expected| ({self.tolerance_reason})",
        ]
        if self.worst and not self.passed:
            lines.append("  worst elements:")
            lines.append(f"    {'index':<22}{'actual':>16}{'expected':>16}{'abs error':>12}")
            for index, actual, expected, error in self.worst:
                lines.append(f"    {str(index):<22}{actual:>16.8g}{expected:>16.8g}{error:>12.3e}")
        if not self.passed:
            lines.append(f"  rerun: {self.rerun_command()}")
        return "\n".join(lines)


def compare(
    actual,
    expected,
    *,
    atol,
    rtol,
    tolerance_reason,
    case_id,
    output,
    backend,
    real_token_mask=None,
    tier="default",
    relative_to_norm=False,
):
    """Compare arrays elementwise on the positions where `real_token_mask` is set.

    With `relative_to_norm` the report also gives the max error as a
    fraction of the expected tensor's L2 norm (a gradient's tolerance is
    stated that way: its atol is a multiple of that norm).

    `real_token_mask` has the leading dimensions of `expected` (e.g. `[batch,
    length]` for hidden states `[batch, length, dim]`) and is broadcast over
    the rest. Integer outputs must match exactly whatever the tolerance.
    """
    expected = np.asarray(expected)
    result = Comparison(
        case_id=case_id,
        output=output,
        backend=backend,
        atol=atol,
        rtol=rtol,
        tolerance_reason=tolerance_reason,
        shape=tuple(expected.shape),
        tier=tier,
    )
    actual = np.asarray(actual)
    if actual.shape != expected.shape:
        result.problem = f"shape {tuple(actual.shape)} differs from the golden's {tuple(expected.shape)}"
        return result
    if np.issubdtype(expected.dtype, np.integer) and not np.issubdtype(actual.dtype, np.integer):
        result.problem = f"dtype {actual.dtype} is not an integer type like the golden's {expected.dtype}"
        return result

    selected = np.ones(expected.shape, dtype=bool)
    if real_token_mask is not None:
        mask = np.asarray(real_token_mask).astype(bool)
        mask = mask.reshape(mask.shape + (1,) * (expected.ndim - mask.ndim))
        selected = np.broadcast_to(mask, expected.shape)
    indices = np.argwhere(selected)
    result.compared = len(indices)
    if result.compared == 0:
        return result

    actual64 = actual.astype(np.float64)[selected]
    expected64 = expected.astype(np.float64)[selected]
    if relative_to_norm:
        result.norm = float(np.linalg.norm(expected64))
    error = np.abs(actual64 - expected64)
    both_nan = np.isnan(actual64) & np.isnan(expected64)
    error = np.where(both_nan, 0.0, error)
    error = np.where(np.isnan(error), np.inf, error)
    limit = atol + rtol * np.abs(expected64)
    if np.issubdtype(expected.dtype, np.integer):
        limit = np.zeros_like(limit)
    bad = error > limit
    result.mismatched = int(bad.sum())
    result.max_abs_error = float(error.max())
    result.mean_abs_error = float(error.mean())
    order = np.argsort(-error, kind="stable")[:WORST_SHOWN]
    result.worst = [
        (tuple(int(i) for i in indices[k]), float(actual64[k]), float(expected64[k]), float(error[k])) for k in order
    ]
    return result


def assert_all_match(comparisons):
    """Raise one AssertionError listing every failed comparison."""
    failed = [c for c in comparisons if not c.passed]
    if failed:
        raise AssertionError(
            f"{len(failed)} of {len(comparisons)} outputs differ from the transformers golden:\n"
            + "\n".join(c.report() for c in failed)
        )
