"""Configuration: `config.yaml` validated by `workflow/schemas/config.schema.yaml`.

The Snakefile validates the whole config once (so a typo fails before any job starts, with a
message naming the key); each rule then passes its own section to `python -m mepr ...` as
JSON, which the stage turns into its dataclass with `parse`. The schema owns every default
and allowed value (`schema`); the dataclasses (`sections`, `train`) type them and are checked
against it by tests/test_config_drift.py; `build` is the one converter.
"""

from mepr.config.build import parse, pick
from mepr.config.schema import (
    REPO_ROOT,
    SCHEMA_PATH,
    USER_NAMED,
    ConfigError,
    apply_user_named,
    load_config,
    load_workflow_config,
    merge_config_files,
    section_defaults,
    subschema,
    validate_config,
)
from mepr.config.sections import (
    AsrParams,
    AudioParams,
    DemoParams,
    DetectParams,
    EncoderParams,
    FramesParams,
)
from mepr.config.sweeps import AblationParams, SweepParams
from mepr.config.train import TrainParams, job_section

__all__ = [
    "REPO_ROOT",
    "SCHEMA_PATH",
    "USER_NAMED",
    "AblationParams",
    "AsrParams",
    "AudioParams",
    "ConfigError",
    "DemoParams",
    "DetectParams",
    "EncoderParams",
    "FramesParams",
    "SweepParams",
    "TrainParams",
    "apply_user_named",
    "job_section",
    "load_config",
    "load_workflow_config",
    "merge_config_files",
    "parse",
    "parse_params",
    "pick",
    "section_defaults",
    "subschema",
    "validate_config",
]


def parse_params(data) -> TrainParams:
    """TrainParams from the `train:` section: a dict, its JSON text, or a JSON file path."""
    return parse(TrainParams, data)
