# deepspeed-cpp tests: the part of DeepSpeed's deepspeed.utils that zero_to_fp32.py imports.
import logging

logger = logging.getLogger("DeepSpeed")
