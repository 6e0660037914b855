# deepspeed-cpp tests: DeepSpeed's fragment_address (deepspeed/utils/tensor_fragment.py), which
# the optimizer-state files pickle under param_slice_mappings.
from dataclasses import dataclass


@dataclass
class fragment_address:
    numel: int
    start: int
