"""The peer of `bench_engine --mode train`: the same model, batch, data and steps with PyTorch's
DistributedDataParallel on Gloo. Started once per rank by bench/engine/ddp_compare.sh with
RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set; rank 0 prints "samples_per_sec <x>"."""
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class TutorialNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    micro = 64
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(4096, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (4096,), generator=g)
    dataset = torch.utils.data.TensorDataset(x, y)
    sampler = torch.utils.data.distributed.DistributedSampler(dataset)
    loader = torch.utils.data.DataLoader(dataset, batch_size=micro, sampler=sampler)
    model = nn.parallel.DistributedDataParallel(TutorialNet())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    warmup, step, epoch = 5, 0, 0
    start = None
    while step < steps + warmup:
        sampler.set_epoch(epoch)
        epoch += 1
        for data, target in loader:
            if step == warmup:
                start = time.perf_counter()
            opt.zero_grad()
            loss = F.cross_entropy(model(data), target)
            loss.backward()
            opt.step()
            step += 1
            if step == steps + warmup:
                break
    secs = time.perf_counter() - start
    if dist.get_rank() == 0:
        print(f"samples_per_sec {steps * micro * dist.get_world_size() / secs}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
