"""The plain-PyTorch peer for benchmarks/train_speed.py: pytorch/examples' DCGAN.

The networks (netG, netD for 64x64 images, ngf = ndf = 64) and the training
step of https://github.com/pytorch/examples/blob/main/dcgan/main.py, written
out here (no Keras): D on a real batch, D on `fake.detach()`, then G through
the same `fake` (the D step's generator forward is reused).  Used only as a
speed reference; its label convention (real = 1) does not matter for speed.
"""

from __future__ import annotations

import torch
from torch import nn


def _init(module):
    name = type(module).__name__
    if "Conv" in name:
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def generator(nz=100, ngf=64, nc=3):
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())


def discriminator(ndf=64, nc=3):
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))  # the sigmoid is in the loss (as ours)


class Peer:
    """pytorch/examples' DCGAN step on a fixed batch of real images (NCHW float32)."""

    def __init__(self, real, nz=100, device="cpu"):
        torch.manual_seed(0)
        self.device, self.nz = device, nz
        self.real = torch.as_tensor(real, device=device)
        self.netG = generator(nz).to(device).apply(_init)
        self.netD = discriminator().to(device).apply(_init)
        self.criterion = nn.BCEWithLogitsLoss()
        self.optD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(self):
        b = self.real.shape[0]
        real_label = torch.full((b,), 1.0, device=self.device)
        fake_label = torch.full((b,), 0.0, device=self.device)
        self.netD.zero_grad()
        err_real = self.criterion(self.netD(self.real).view(-1), real_label)
        err_real.backward()
        noise = torch.randn(b, self.nz, 1, 1, device=self.device)
        fake = self.netG(noise)
        err_fake = self.criterion(self.netD(fake.detach()).view(-1), fake_label)
        err_fake.backward()
        self.optD.step()
        self.netG.zero_grad()
        err_g = self.criterion(self.netD(fake).view(-1), real_label)
        err_g.backward()
        self.optG.step()
        return float((err_real + err_fake).detach()), float(err_g.detach())

    def run(self, steps):
        for _ in range(steps):
            losses = self.step()
        if self.device != "cpu":
            torch.cuda.synchronize()
        return losses
