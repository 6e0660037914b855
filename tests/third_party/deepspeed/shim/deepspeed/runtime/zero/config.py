# deepspeed-cpp tests: DeepSpeed's ZeroStageEnum (deepspeed/runtime/zero/config.py), which its
# optimizer-state files pickle as zero_stage.
from enum import Enum


class ZeroStageEnum(int, Enum):
    """ Enum class for possible zero stages """
    disabled = 0
    optimizer_states = 1
    gradients = 2
    weights = 3
    max_stage = 3
