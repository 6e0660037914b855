# deepspeed-cpp tests: DeepSpeed's loss-scaler classes (deepspeed/runtime/fp16/loss_scaler.py),
# which the optimizer-state files pickle; unpickling restores their attributes.


class LossScalerBase:

    def __init__(self, cur_scale):
        self.cur_scale = cur_scale
        self.dynamic = False

    @property
    def loss_scale(self):
        return self.cur_scale


class LossScaler(LossScalerBase):

    def __init__(self, scale=1):
        super().__init__(scale)


class DynamicLossScaler(LossScalerBase):

    def __init__(self, init_scale, scale_window, min_scale, delayed_shift, consecutive_hysteresis,
                 raise_error_at_min_scale=True, dtype=None):
        super().__init__(init_scale)
        self.cur_iter = 0
        self.last_overflow_iter = -1
        self.scale_factor = 2.0
        self.scale_window = scale_window
        self.min_scale = min_scale
        self.delayed_shift = delayed_shift
        self.cur_hysteresis = delayed_shift
        self.consecutive_hysteresis = consecutive_hysteresis
        self.raise_error_at_min_scale = raise_error_at_min_scale
        self.dynamic = True
        self.dtype = dtype
