"""The peer of build/bin/cifar10_deepspeed: the same tutorial in PyTorch (DistributedDataParallel
on Gloo), with the same network, data, global batch, optimizer (Adam, betas 0.8/0.999, eps 1e-8,
weight decay 3e-7), WarmupLR schedule (log warm-up 0 -> lr over 1000 steps), gradient clipping
and number of ranks. Run one process per rank with the launcher's environment (RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT), e.g. from bench/cifar10/run_bench.sh.

Data loading is kept as cheap as ours (the whole set normalised into one tensor up front, batches
by index), so that the comparison measures the training step and not Python's DataLoader.
Prints 'Training throughput: X samples/s' and the test accuracy on rank 0.
"""
import argparse
import gzip
import math
import os
import struct
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    rank = magic & 0xFF
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def load(data_dir, prefix, limit=None):
    images = read_idx(os.path.join(data_dir, prefix + "-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, prefix + "-labels-idx1-ubyte.gz"))
    if limit:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.copy()).float().div_(255).sub_(0.5).div_(0.5).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


class Net(nn.Module):
    """The tutorial's network, sized for 1x28x28 images."""

    def __init__(self, channels=1, side=28):
        super().__init__()
        self.k = ((side - 4) // 2 - 4) // 2
        self.conv1 = nn.Conv2d(channels, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * self.k * self.k, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 16 * self.k * self.k)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data_dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("-b", "--batch_size", type=int, default=16, help="global batch size")
    p.add_argument("-e", "--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--train_samples", type=int, default=None)
    args = p.parse_args()

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    x, y = load(args.data_dir, "train", args.train_samples)
    net = Net()
    model = nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.8, 0.999), eps=1e-8, weight_decay=3e-7)
    warmup = 1000
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min(1.0, math.log(step + 1) / math.log(warmup)))
    micro = args.batch_size // world
    n = x.shape[0]
    per_rank = (n + world - 1) // world
    steps_per_epoch = (per_rank + micro - 1) // micro
    criterion = nn.CrossEntropyLoss()

    start = time.perf_counter()
    samples = 0
    for epoch in range(args.epochs):
        g = torch.Generator()
        g.manual_seed(epoch)
        order = torch.randperm(n, generator=g)
        order = torch.cat([order, order[: per_rank * world - n]])
        mine = order[rank::world]
        for i in range(steps_per_epoch):
            idx = mine[i * micro:(i + 1) * micro]
            out = model(x[idx])
            loss = criterion(out, y[idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            samples += args.batch_size
    seconds = time.perf_counter() - start
    if rank == 0:
        print("Training throughput: %.1f samples/s (%d samples in %.1f s, world size %d)" % (
            samples / seconds, samples, seconds, world))
        tx, ty = load(args.data_dir, "t10k")
        with torch.no_grad():
            pred = net(tx).argmax(1)
        print("Accuracy of the network on the %d test images: %d %%" % (
            len(ty), 100 * (pred == ty).sum().item() // len(ty)))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
