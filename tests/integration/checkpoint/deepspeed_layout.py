"""Writes a checkpoint folder as Python DeepSpeed 0.19.6 writes it, for the tests that load
DeepSpeed's own checkpoints (checkpoint_test.cpp, DeepSpeedLayout.*).

The content comes from a stage-0 fp32 checkpoint of deepspeed-cpp (the whole model, and the
optimizer state of every parameter); the layout is DeepSpeed's, built here field by field as
its writer builds it: engine.py's _save_checkpoint / _get_zero_param_shapes /
_save_zero_checkpoint, stage_1_and_2.py's state_dict (flatten_dense_tensors_aligned to
2 * world, get_data_parallel_partitions, groups_padding, _get_groups_without_padding,
param_slice_mappings) and stage3.py's _rigid_state_dict (every parameter cut on its own).
No manifest, and the optimizer is DeepSpeed's FusedAdam (its step an int, in the state and
the group).

    python3 deepspeed_layout.py SOURCE_DIR TAG OUT_DIR STAGE WORLD
"""
import math
import os
import sys
from collections import OrderedDict

import torch

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "third_party", "deepspeed", "shim"))
from deepspeed.runtime.fp16.loss_scaler import LossScaler  # noqa: E402
from deepspeed.runtime.zero.config import ZeroStageEnum  # noqa: E402
from deepspeed.utils.tensor_fragment import fragment_address  # noqa: E402

VERSION = "0.19.6"


def main(source, tag, out, stage, world):
    src = torch.load(os.path.join(source, tag, "mp_rank_00_model_states.pt"))
    module = src["module"]
    names = list(module.keys())  # the parameters (no buffers in this model), in module order
    opt = src["optimizer"]
    step = int(opt["state"][0]["step"].item())
    hyper = {k: v for k, v in opt["param_groups"][0].items() if k != "params"}
    # FusedAdam's param group: torch's keys, bias_correction, and a group-wide step.
    group = dict(hyper, bias_correction=True, step=step)
    masters = [module[n].float().flatten() for n in names]
    exp_avg = [opt["state"][i]["exp_avg"].flatten() for i in range(len(names))]
    exp_avg_sq = [opt["state"][i]["exp_avg_sq"].flatten() for i in range(len(names))]
    ds_config = src["ds_config"]
    ds_config["zero_optimization"] = {"stage": stage}
    client = {k: src[k] for k in ("step", "note", "history")}

    def common(module_sd, zero):
        # engine.py's _common_checkpoint_state
        return dict(module=module_sd,
                    buffer_names=[],
                    optimizer=None if zero else {
                        "state": {i: {"step": step, "exp_avg": opt["state"][i]["exp_avg"],
                                      "exp_avg_sq": opt["state"][i]["exp_avg_sq"]} for i in range(len(names))},
                        "param_groups": [dict(group, params=list(range(len(names))))]},
                    param_shapes=[OrderedDict((n, module[n].shape) for n in names)] if zero else None,
                    frozen_param_shapes=OrderedDict() if stage >= 2 else None,
                    shared_params={} if zero else None,
                    frozen_param_fragments=OrderedDict() if stage >= 2 else None,
                    lr_scheduler=src["lr_scheduler"],
                    data_sampler=None,
                    random_ltd=None,
                    sparse_tensor_module_names=set(),
                    skipped_steps=src["skipped_steps"],
                    global_steps=src["global_steps"],
                    global_samples=src["global_samples"],
                    dp_world_size=world,
                    mp_world_size=1,
                    checkpoint_parallel_dimensions={"pp_degree": 1, "tp_degree": 1},
                    ds_config=ds_config,
                    ds_version=VERSION)

    folder = os.path.join(out, tag)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(out, "latest"), "w") as f:
        f.write(tag)
    state_dict = OrderedDict((n, module[n]) for n in names)
    if stage == 0:
        torch.save(dict(common(state_dict, False), **client), os.path.join(folder, "mp_rank_00_model_states.pt"))
        return
    if stage < 3:
        torch.save(dict(common(state_dict, True), **client), os.path.join(folder, "mp_rank_00_model_states.pt"))
        total = sum(t.numel() for t in masters)
        alignment = 2 * world  # nccl_start_alignment_factor * world size
        aligned = int(math.ceil(total / alignment)) * alignment

        def flat(tensors):  # flatten_dense_tensors_aligned
            return torch.cat(tensors + [torch.zeros(aligned - total)])

        def partitions(t):  # get_data_parallel_partitions
            base, remaining = divmod(t.numel(), world)
            sizes = [base + (1 if r < remaining else 0) for r in range(world)]
            return list(torch.split(t, sizes))

        fp32, m, v = partitions(flat(masters)), partitions(flat(exp_avg)), partitions(flat(exp_avg_sq))
        for r in range(world):
            left = sum(p.numel() for p in fp32[:r])
            size = fp32[r].numel()
            padding = size if total <= left else (left + size - total if total < left + size else 0)
            mappings = OrderedDict()  # _create_param_mapping: the pieces of this rank's partition
            lp = 0
            for n, t in zip(names, masters):
                begin, end = max(lp, left), min(lp + t.numel(), left + size)
                if begin < end:
                    mappings[n] = fragment_address(start=begin - left, numel=end - begin)
                lp += t.numel()
            sd = {
                "loss_scaler": LossScaler(scale=1.0),
                "dynamic_loss_scale": False,
                "overflow": False,
                "clip_grad": 0.0,
                "base_optimizer_state": {
                    "state": {0: {"step": step, "exp_avg": m[r].clone(), "exp_avg_sq": v[r].clone()}},
                    "param_groups": [dict(group, params=[0])]},
                "single_partition_of_fp32_groups": [fp32[r][:size - padding].clone()],
                "zero_stage": ZeroStageEnum.gradients if stage == 2 else ZeroStageEnum.optimizer_states,
                "group_paddings": [padding],
                "partition_count": world,
                "ds_version": VERSION,
                "param_slice_mappings": [mappings],
            }
            torch.save(dict(optimizer_state_dict=sd, ds_config=ds_config, ds_version=VERSION),
                       os.path.join(folder, f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt"))
        return
    # Stage 3: partitioned parameters are empty in the module; each is cut on its own.
    empty = OrderedDict((n, torch.empty(0, dtype=module[n].dtype)) for n in names)

    def ds_tensor(t, r):  # a parameter's partition on rank r, padded to ceil(numel / world)
        size = int(math.ceil(t.numel() / world))
        part = torch.zeros(size)
        piece = t[r * size:(r + 1) * size]
        part[:piece.numel()] = piece
        return part

    for r in range(world):
        torch.save(dict(common(empty, True), **client), os.path.join(folder, f"zero_pp_rank_{r}_mp_rank_00_model_states.pt"))
        sd = {
            "zero_stage": ZeroStageEnum.weights,
            "loss_scaler": LossScaler(scale=1.0),
            "dynamic_loss_scale": False,
            "overflow": False,
            "partition_count": world,
            "optimizer_state_dict": {
                "state": {0: {"step": step,
                              "exp_avg": torch.cat([ds_tensor(t, r) for t in exp_avg]),
                              "exp_avg_sq": torch.cat([ds_tensor(t, r) for t in exp_avg_sq])}},
                "param_groups": [dict(group, params=[0])]},
            "fp32_flat_groups": [torch.cat([ds_tensor(t, r) for t in masters])],
        }
        torch.save(dict(optimizer_state_dict=sd, ds_config=ds_config, ds_version=VERSION),
                   os.path.join(folder, f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
