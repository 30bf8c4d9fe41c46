from distilbert_hub.convert.hf_config import backbone_kwargs_from_hf_config
from distilbert_hub.distilbert_presets import backbone_presets
from harness.golden import case_ids, load_case


def test_preset_table_matches_the_hf_architectures_of_the_goldens():
    checked = set()
    for case_id in case_ids(kind="backbone", tiers=("large", "extra_large")):
        golden = load_case(case_id)
        preset = golden.provenance["preset"]
        expected = backbone_kwargs_from_hf_config(golden.config)
        config = backbone_presets[preset]["config"]
        assert {k: config[k] for k in expected if k in config} == {k: v for k, v in expected.items() if k in config}
        checked.add(preset)
    assert checked == set(backbone_presets)
