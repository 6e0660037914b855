#!/usr/bin/python3
"""DeepSpeed's 0/1 Adam and 1-bit LAMB updates, written out in Python (PyTorch), run on the
CIFAR-10 example's problem (Fashion-MNIST, its LeNet, examples/cifar10/ds_config.json: batch
16 = 2 ranks x 8, WarmupLR (log) to 1e-3 over 1000 steps, betas (0.8, 0.999), eps 1e-8,
weight decay 3e-7, gradient clipping 1.0 on each rank's own gradients) with 2 ranks
simulated in one process. It tells whether an accuracy gap of our optimizers is the port's or
the algorithm's at this config (docs/onebit.md, "On the CIFAR-10 example").

  deepspeed_reference.py adam EPOCHS                     AdamW (the example's "Adam")
  deepspeed_reference.py lamb EPOCHS FREEZE_STEP         1-bit LAMB (a FREEZE_STEP past the
                                                         run: its warm-up LAMB throughout)
  deepspeed_reference.py zeroone EPOCHS VAR_FREEZE_STEP VAR_UPDATE_SCALER LOCAL_STEP_SCALER
                                 LOCAL_STEP_CLIPPER      0/1 Adam
  deepspeed_reference.py zero_variance                   elements whose gradient was 0 at
                                                         every step so far, after k steps
Prints the test accuracy (%) on the 10,000 test images, or "diverged".
Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
"""
import copy
import gzip
import math
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

RANKS = 2
MICRO_BATCH = 8
DATA = '/usr/share/datasets/fashion-mnist/'
BETAS = (0.8, 0.999)
EPS = 1e-8
WEIGHT_DECAY = 3e-7


def read_idx(path):
    raw = gzip.open(path).read()
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(raw[3])]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def load(prefix):
    images = torch.tensor(read_idx(f'{DATA}{prefix}-images-idx3-ubyte.gz'), dtype=torch.float32)
    labels = torch.tensor(read_idx(f'{DATA}{prefix}-labels-idx1-ubyte.gz'), dtype=torch.long)
    return images.div(255).sub(0.5).div(0.5).unsqueeze(1), labels  # as the example's loader


class Net(nn.Module):  # examples/cifar10/net.h for 28x28 grey images
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(256, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2).view(-1, 256)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def sign(x):  # one bit cannot hold 0: +1 for x >= 0
    return (x >= 0).float() * 2 - 1


def compressed_length(numel):
    unit = RANKS * (RANKS * 8 // math.gcd(RANKS, 8))
    return -(-numel // unit) * unit


def compressed_allreduce(buffers, worker, server):
    """DeepSpeed's compressed_allreduce for all ranks at once: buffers[r] (padded), worker[r]
    and server[r] (rank r's errors, updated in place). Returns what every rank gets."""
    signs, scales = [], []
    for r in range(RANKS):
        x = buffers[r] + worker[r]
        scale = x.norm() / math.sqrt(x.numel())
        worker[r].copy_(x - scale * sign(x))
        signs.append(sign(x))
        scales.append(scale)
    chunk = buffers[0].numel() // RANKS
    out = []
    for r in range(RANKS):  # rank r serves chunk r
        m = sum(signs[i][r * chunk:(r + 1) * chunk] * scales[i] / RANKS for i in range(RANKS)) + server[r]
        scale = m.norm() / math.sqrt(m.numel())
        server[r].copy_(m - scale * sign(m))
        out.append(scale * sign(m))
    return torch.cat(out)


def learning_rate(step, peak=1e-3, warmup=1000):  # WarmupLR (log); step counts from 1
    return peak * math.log(step) / math.log(warmup) if step < warmup else peak


def rank_gradients(nets, batch, averaged, images, labels):
    """Each rank's clipped gradients of its share of the batch; their average where averaged."""
    grads = []
    for r, net in enumerate(nets):
        net.zero_grad()
        share = batch[r * MICRO_BATCH:(r + 1) * MICRO_BATCH]
        F.cross_entropy(net(images[share]), labels[share]).backward()
        grads.append([p.grad.detach().clone() for p in net.parameters()])
    if averaged:
        grads = [[sum(g[i] for g in grads) / RANKS for i in range(len(grads[0]))]] * RANKS
    clipped = []
    for g in grads:
        norm = math.sqrt(sum(float(x.pow(2).sum()) for x in g))
        clipped.append([x * (1.0 / (norm + 1e-6)) for x in g] if norm > 1.0 else g)
    return clipped


def batches(epochs, count):
    step = 0
    for _ in range(epochs):
        order = torch.randperm(count)
        for j in range(count // (RANKS * MICRO_BATCH)):
            step += 1
            yield step, order[j * RANKS * MICRO_BATCH:(j + 1) * RANKS * MICRO_BATCH]


def adam(epochs, train, test):
    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY)
    for step, batch in batches(epochs, len(train[0])):
        for group in opt.param_groups:
            group['lr'] = learning_rate(step)
        for p, g in zip(net.parameters(), rank_gradients([net] * RANKS, batch, True, *train)[0]):
            p.grad = g
        opt.step()
    return accuracy(net, test)


def onebit_lamb(epochs, freeze_step, train, test, max_coeff=10.0, min_coeff=0.01, coeff_beta=0.9,
                factor_max=4.0, factor_min=0.5, factor_threshold=0.1):
    """DeepSpeed's OnebitLamb. The ranks' weights stay equal (their momentum is all-reduced),
    so one network holds them; each rank keeps its own compression errors."""
    net = Net()
    params = list(net.parameters())
    beta1, beta2 = BETAS
    state = [dict(m=torch.zeros_like(p), v=torch.zeros_like(p), fresh=torch.zeros_like(p), coeff=0.0,
                  last_factor=1.0) for p in params]
    numel = sum(p.numel() for p in params)
    length = compressed_length(numel)
    worker = [torch.zeros(length) for _ in range(RANKS)]
    server = [torch.zeros(length // RANKS) for _ in range(RANKS)]
    padding = torch.zeros(length - numel)
    compressing, scaling = False, None
    for step, batch in batches(epochs, len(train[0])):
        lr = learning_rate(step)
        grads = rank_gradients([net] * RANKS, batch, not compressing, *train)
        if step == 1:  # the set-up step
            continue
        with torch.no_grad():
            if not compressing:
                for p, s, g in zip(params, state, grads[0]):
                    s['m'].mul_(beta1).add_(g, alpha=1 - beta1)
                    s['v'].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    if step == freeze_step:
                        s['fresh'] = s['v'].clone()
                    update = s['m'] / (s['v'].sqrt() + EPS) + WEIGHT_DECAY * p
                    coeff = 1.0
                    if p.norm() != 0 and update.norm() != 0:
                        coeff = min(max(float(p.norm() / update.norm()), min_coeff), max_coeff)
                    if coeff != 1.0:
                        s['coeff'] = coeff_beta * s['coeff'] + (1 - coeff_beta) * coeff
                    p.add_(-lr * coeff * update)
                compressing = step >= freeze_step
                continue
            before = [s['m'].clone() for s in state]
            if scaling is None:
                rms = [float(s['m'].norm()) / math.sqrt(s['m'].numel()) for s in state]
                scaling = [sum(rms) / len(rms) / x for x in rms]
            flat = [torch.cat([((s['m'] * beta1 + (1 - beta1) * grads[r][i]) * scaling[i]).flatten()
                               for i, s in enumerate(state)] + [padding]) for r in range(RANKS)]
            result = compressed_allreduce(flat, worker, server)
            padding = result[numel:].clone()
            offset = 0
            for i, (p, s) in enumerate(zip(params, state)):
                s['m'] = result[offset:offset + p.numel()].view_as(p) / scaling[i]
                offset += p.numel()
                g = (s['m'] - before[i] * beta1) / (1 - beta1)
                s['fresh'].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = s['v'].sqrt() + EPS
                prelim = s['m'] / denom
                update = prelim + WEIGHT_DECAY * p
                factor = float((denom / (s['fresh'].sqrt() + EPS)).max())
                ratio = min(1.0, float(prelim.norm() / update.norm()))
                factor = min(max(factor * ratio + (1 - ratio), factor_min), factor_max)
                factor = min(max(factor, s['last_factor'] * (1 - factor_threshold)),
                             s['last_factor'] * (1 + factor_threshold))
                s['last_factor'] = factor
                p.add_(-lr * s['coeff'] * factor * update)
        if not math.isfinite(float(params[0].sum())):
            return None
    return accuracy(net, test)


def zero_one_adam(epochs, var_freeze_step, var_update_scaler, local_step_scaler, local_step_clipper, train, test):
    """DeepSpeed's ZeroOneAdam; each rank its own network (they part during local steps)."""
    nets = [Net()]
    nets.append(copy.deepcopy(nets[0]))
    params = [list(n.parameters()) for n in nets]
    beta1, beta2 = BETAS
    k = len(params[0])
    m = [[torch.zeros_like(p) for p in params[0]] for _ in range(RANKS)]
    u = [[torch.zeros_like(p) for p in params[0]] for _ in range(RANKS)]
    v = [torch.zeros_like(p) for p in params[0]]
    worker = [[torch.zeros(compressed_length(p.numel())) for _ in range(RANKS)] for p in params[0]]
    server = [[torch.zeros(compressed_length(p.numel()) // RANKS) for _ in range(RANKS)] for p in params[0]]
    var_interval, var_counter, local_interval, local_counter, lrs = 1, 0, 1, 0, 0.0
    frozen, averaged = False, True

    def allreduce(i, per_rank):
        n = params[0][i].numel()
        padded = [torch.cat([b.flatten(), torch.zeros(compressed_length(n) - n)]) for b in per_rank]
        return compressed_allreduce(padded, worker[i], server[i])[:n].view_as(params[0][i])

    for step, batch in batches(epochs, len(train[0])):
        lr = learning_rate(step)
        grads = rank_gradients(nets, batch, averaged, *train)
        if step == 1:  # the set-up step
            continue
        with torch.no_grad():
            if frozen:
                lrs += lr
            for i in range(k):
                if not frozen:
                    if step % var_interval == 0:
                        g = grads[0][i]
                        v[i].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    else:
                        g = allreduce(i, [grads[r][i] for r in range(RANKS)])
                    denom = v[i].sqrt() + EPS
                    for r in range(RANKS):
                        m[r][i].mul_(beta1).add_(g, alpha=1 - beta1)
                        params[r][i].add_(-lr * (m[r][i] / denom + WEIGHT_DECAY * params[r][i]))
                    continue
                denom = v[i].sqrt() + EPS
                for r in range(RANKS):
                    m[r][i].mul_(beta1).add_(grads[r][i], alpha=1 - beta1)
                    update = m[r][i] / denom + WEIGHT_DECAY * params[r][i]
                    params[r][i].add_(-lr * update)
                    u[r][i].add_(-lr * update)
                if step % local_interval == 0:
                    agreed = allreduce(i, [u[r][i] * denom for r in range(RANKS)])
                    for r in range(RANKS):
                        params[r][i].add_(-u[r][i]).add_(agreed / denom)
                        m[r][i] = -agreed / lrs
                        u[r][i].zero_()
            if frozen and step % local_interval == 0:
                lrs = 0.0
            if not frozen:
                if step % var_interval == 0:
                    var_counter += 1
                    if var_counter == var_update_scaler:
                        var_counter, var_interval = 0, var_interval * 2
                averaged = (step + 1) % var_interval == 0
            else:
                local_counter += 1
                if local_counter == local_step_scaler:
                    local_counter, local_interval = 0, min(local_step_clipper, local_interval * 2)
            if not frozen and step > var_freeze_step:
                frozen, averaged = True, False
                for e in sum(worker, []) + sum(server, []):
                    e.zero_()
        if not math.isfinite(float(params[0][0].sum())):
            return None
    return accuracy(nets[0], test)


def zero_variance(train):
    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY)
    seen = [torch.zeros_like(p, dtype=torch.bool) for p in net.parameters()]
    total = sum(p.numel() for p in net.parameters())
    for step, batch in batches(1, len(train[0])):
        for group in opt.param_groups:
            group['lr'] = learning_rate(step)
        for p, g, s in zip(net.parameters(), rank_gradients([net] * RANKS, batch, True, *train)[0], seen):
            p.grad = g
            s |= g != 0
        opt.step()
        if step in (17, 100, 1000, 3000):
            print(f'after {step} steps: {sum(int((~s).sum()) for s in seen)} of {total} elements', flush=True)


@torch.no_grad()
def accuracy(net, test):
    return 100.0 * float((net(test[0]).argmax(1) == test[1]).float().mean())


def main(argv):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    train, test = load('train'), load('t10k')
    what, numbers = argv[0], [int(a) for a in argv[1:]]
    if what == 'zero_variance':
        return zero_variance(train)
    result = {'adam': lambda: adam(*numbers, train, test),
              'lamb': lambda: onebit_lamb(*numbers, train, test),
              'zeroone': lambda: zero_one_adam(*numbers, train, test)}[what]()
    print(f'{" ".join(argv)}: ' + ('diverged' if result is None else f'{result:.2f} %'))


if __name__ == '__main__':
    main(sys.argv[1:])
