"""Each task's tests live in tests/tasks/test_distilbert_<task>.py: a new
task in the harness's factory (`MODELS`) or a new head golden fails here
until its file exists and runs that task's goldens."""

from pathlib import Path

from harness.golden import case_ids, read_manifest
from harness.testing import TASK_NAMES

HERE = Path(__file__).parent


def test_every_task_and_every_head_golden_has_its_file():
    tasks = set(TASK_NAMES)
    tasks |= {read_manifest()[case_id]["provenance"]["head"] for case_id in case_ids(kind="head")}
    for task in sorted(tasks):
        path = HERE / f"test_distilbert_{task}.py"
        assert path.is_file(), f"{task}: its tests go in {path.relative_to(HERE.parent.parent)}"
        text = path.read_text()
        assert f'task = "{task}"' in text, f"{path.name}: its TaskTestCase sets task = {task!r}"
        assert f'head_case_ids("{task}")' in text, f"{path.name}: runs no head golden of {task}"
