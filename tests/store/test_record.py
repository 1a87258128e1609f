"""What a run's record holds: the config hash tells repeats of one configuration, and ignores
the run-specific keys (paths, launcher, run id, contract nodes)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf, open_dict

from cvbench.store.record import RUN_SPECIFIC_KEYS, config_hash


def test_hash_of_a_known_config_is_stable() -> None:
    """Recorded hashes stay valid: the value the store's first version gave this config."""
    cfg = {"seed": 3, "optim": {"lr": 0.001}, "paths": {"output_dir": "/x"}, "run_id": "ab"}
    assert config_hash(cfg) == "d25c371cefa98c7c"
    assert config_hash({**cfg, "hydra": {"run": {"dir": "/y"}}}) == "d25c371cefa98c7c"


def without_contracts(cfg: DictConfig) -> DictConfig:
    copy = cfg.copy()
    with open_dict(copy):
        copy.model.pop("contract", None)
        copy.data.pop("contract", None)
    return copy


def test_contract_nodes_do_not_change_the_hash(make_cfg) -> None:
    """A ``contract:`` node under ``model:`` or ``data:`` describes the component for the
    tests, not what the run computes: two runs that differ only there are repeats."""
    assert "model.contract" in RUN_SPECIFIC_KEYS and "data.contract" in RUN_SPECIFIC_KEYS
    cfg = make_cfg("experiment=classification/digits_small_cnn", "seed=1")
    bare = without_contracts(cfg)
    other = bare.copy()
    with open_dict(other):
        other.model.contract = {"input_shape": [1, 8, 8], "output": "logits"}
        other.data.contract = {"provides": ["labels"], "fake": "tests.fakes.digits"}
    assert config_hash(cfg) == config_hash(bare) == config_hash(other)
    assert "contract" in other.model  # the hash left the config as it was

    changed = bare.copy()
    changed.seed = 2
    assert config_hash(changed) != config_hash(bare)
    changed = bare.copy()
    with open_dict(changed):
        changed.model.contract_note = "not a contract node"
    assert config_hash(changed) != config_hash(bare)


def test_hash_reads_interpolations_unresolved() -> None:
    """The hash is of the config as written: an interpolation is hashed as its text."""
    a = OmegaConf.create({"data": {"num_classes": 10}, "model": {"n": "${data.num_classes}"}})
    b = OmegaConf.create({"data": {"num_classes": 10}, "model": {"n": 10}})
    assert config_hash(a) != config_hash(b)
