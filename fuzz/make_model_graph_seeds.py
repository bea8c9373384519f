"""Writes the seeds of fuzz/corpus/fuzz_model_graph/: graph JSONs convbridge._capture.capture records from tiny
models with torch.export (file name: SHA-1 of the content, as libFuzzer names inputs). Needs torch and the
convbridge package (the build's staged package will do):

    PYTHONPATH=build-python/pkg .venv/bin/python fuzz/make_model_graph_seeds.py   # idempotent

Source lines keep only this file's name, so the seeds do not depend on the checkout's path.
"""
import hashlib
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

from convbridge import _capture

HERE = os.path.dirname(os.path.abspath(__file__))


class ConvBnPoolLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1, ceil_mode=True))
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class CatSplit(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 2, 3, padding=1)
        self.b = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        left, right = torch.split(x, [2, 3], dim=1)
        y = torch.cat([self.a(left), self.b(right)], 1)
        p, q = y.chunk(2, 3)
        return torch.cat([p * 2, q - 1], 3)


class PermutedBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 4)
        self.gamma = nn.Parameter(torch.full((4,), 0.5))

    def forward(self, x):
        y = self.fc(self.norm(self.dw(x).permute(0, 2, 3, 1))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class SliceReduceOutputs(nn.Module):
    def forward(self, x):
        return {"mean": x[:, 1:3].mean((2, 3)), "first": x[:, 0], "soft": x[..., ::2].softmax(1),
                "pair": (x.amax(1, keepdim=True), x.sum(-1))}


class ShuffleResize(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3)

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.interpolate(self.conv(x), scale_factor=2, mode="bilinear", align_corners=False)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3, stride=2)
        self.fc = nn.Linear(6, 4)

    def forward(self, x, y):
        return F.silu(self.conv(x)).mean(-1) + self.fc(y).flatten(1)


MODELS = [(ConvBnPoolLinear, [(1, 3, 6, 6)]), (CatSplit, [(1, 5, 4, 6)]), (PermutedBlock, [(1, 4, 5, 5)]),
          (SliceReduceOutputs, [(2, 4, 3, 5)]), (ShuffleResize, [(1, 4, 5, 6)]), (TwoInputs, [(2, 3, 9), (2, 6)])]


def seed_text(model_class, shapes):
    torch.manual_seed(0)
    graph, _, _ = _capture.capture(model_class().eval(), [torch.randn(*s) for s in shapes])
    graph = json.loads(graph)
    for node in graph["nodes"]:
        node["source"] = node["source"].replace(HERE + os.sep, "")
    return json.dumps(graph)


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus", "fuzz_model_graph")
    os.makedirs(directory, exist_ok=True)
    for model_class, shapes in MODELS:
        data = seed_text(model_class, shapes).encode()
        path = os.path.join(directory, hashlib.sha1(data).hexdigest())
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
        print(f"{model_class.__name__}: {len(data)} bytes -> {os.path.relpath(path)}")


if __name__ == "__main__":
    main()
