"""PyTorch's side of the W5 side-by-side benchmark: one training step of each of lethe's two
class-conditional generators on 1x28x28 images with 10 classes,

  cvae    conditional VAE, latent 16; loss = batch mean of the negative ELBO in nats
          (pixel BCE-with-logits summed over pixels + KL to N(0, I) summed over the latent)
  ddpm-s  small class-conditional U-Net noise predictor, T = 200 linear-beta steps;
          loss = batch mean of the per-image mean squared noise-prediction error

timed step by step (zero_grad(set_to_none=True), forward, loss, backward, torch.optim.Adam
lr 1e-3 step) on random data: images uniform in [0, 1] (read as pixel/255), random labels, and
for ddpm-s a fresh t and noise every step, drawn inside the timed step. Batch 128 for cvae and
64 for ddpm-s. Prints median and minimum ms/step per model and memory format (with --json, one
JSON object). Run it with the environment lethe runs with (OPENBLAS_CORETYPE is left as set).

    /usr/bin/python3 bench/torch_generative.py [--model cvae|ddpm-s|both] [--threads 2]
        [--batch N] [--steps 30] [--warmup 5] [--json]
    /usr/bin/python3 bench/torch_generative.py --names    # state_dict() names, shapes and counts

The attribute names below are the contract: lethe's state-dict names for these models equal the
keys of state_dict() here, in the same order (the --names dump is what its test compares with).

Each model is timed twice, in the default (contiguous NCHW) memory format and in channels_last
(model and image inputs converted), and the faster is named. Of the PyTorch performance tuning
guide's CPU recommendations that matter for training, applied here:
  - torch.set_num_threads(--threads) (the OMP_NUM_THREADS knob, set in-process);
  - channels_last memory format (timed as its own configuration, see above);
  - oneDNN (torch.backends.mkldnn) enabled, as it is by default; its state is reported;
  - zero_grad(set_to_none=True);
  - debugging APIs off (anomaly detection off, no profiler).
Not applied: numactl / thread affinity and an alternative allocator (jemalloc, tcmalloc) are
environment settings of the launching shell, not of this script; Intel Extension for PyTorch is
not part of stock PyTorch; BF16 autocast changes the arithmetic, and this comparison is fp32;
oneDNN Graph / TorchScript freezing are inference-only; DistributedDataParallel is multi-node.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

C, S, K = 1, 28, 10  # image channels, side, classes


class CVAE(nn.Module):
    def __init__(self, latent=16):
        super().__init__()
        # attribute order fixes state_dict() order, which lethe mirrors
        self.encoder_label = nn.Embedding(K, S * S)
        self.enc_conv1 = nn.Conv2d(C + 1, 32, 4, stride=2, padding=1)
        self.enc_conv2 = nn.Conv2d(32, 64, 4, stride=2, padding=1)
        self.fc_mu = nn.Linear(64 * 7 * 7, latent)
        self.fc_logvar = nn.Linear(64 * 7 * 7, latent)
        self.decoder_label = nn.Embedding(K, latent)
        self.dec_fc = nn.Linear(2 * latent, 64 * 7 * 7)
        self.dec_conv1 = nn.Conv2d(64, 32, 3, padding=1)
        self.dec_conv2 = nn.Conv2d(32, C, 3, padding=1)

    def forward(self, x, y):
        n = x.shape[0]
        # the label becomes one extra image channel, appended after the pixels
        h = torch.cat([x, self.encoder_label(y).view(n, 1, S, S)], 1)
        h = F.relu(self.enc_conv2(F.relu(self.enc_conv1(h))))  # 28 -> 14 -> 7
        h = h.flatten(1)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        h = F.relu(self.dec_fc(torch.cat([z, self.decoder_label(y)], 1))).view(n, 64, 7, 7)
        h = F.relu(self.dec_conv1(F.interpolate(h, scale_factor=2, mode="nearest")))
        logits = self.dec_conv2(F.interpolate(h, scale_factor=2, mode="nearest"))
        return logits, mu, logvar

    def loss(self, x, y):
        logits, mu, logvar = self(x, y)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1)
        return (rec + kl).mean()


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb=128):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb_proj = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        # no attribute at all when in == out, so no skip.* keys appear in state_dict()
        if cin != cout:
            self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x, e_act):
        # e_act is silu(e), computed once per forward by the caller
        h = self.conv1(F.silu(self.norm1(x))) + self.emb_proj(e_act)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.skip(x) if hasattr(self, "skip") else x)


class DDPMS(nn.Module):
    def __init__(self, steps=200, base=32, emb=128):
        super().__init__()
        self.steps = steps
        # plain attributes, not buffers: the schedule is derived, and lethe's state dict has no
        # entry for it; float64 as specified, cast only after indexing
        betas = torch.linspace(5e-4, 0.1, steps, dtype=torch.float64)
        self.alpha_bar = torch.cumprod(1 - betas, 0)
        self.freqs = torch.pow(10000.0, -torch.arange(16, dtype=torch.float32) / 16)
        self.time_mlp = nn.Sequential(nn.Linear(32, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.class_embedding = nn.Embedding(K, emb)
        self.conv_in = nn.Conv2d(C, base, 3, padding=1)
        self.down1 = ResBlock(base, base)
        self.down2 = ResBlock(base, 2 * base)
        self.mid = ResBlock(2 * base, 2 * base)
        self.up2 = ResBlock(4 * base, 2 * base)
        self.up1 = ResBlock(3 * base, base)
        self.norm_out = nn.GroupNorm(8, base)
        self.conv_out = nn.Conv2d(base, C, 3, padding=1)

    def time_features(self, t):
        a = t.float()[:, None] * self.freqs[None, :]
        return torch.cat([a.sin(), a.cos()], 1)  # sin block first, then cos

    def forward(self, x, t, y):
        e = F.silu(self.time_mlp(self.time_features(t)) + self.class_embedding(y))
        h1 = self.down1(self.conv_in(x), e)  # 28x28
        h2 = self.down2(F.avg_pool2d(h1, 2), e)  # 14x14
        m = self.mid(F.avg_pool2d(h2, 2), e)  # 7x7
        u2 = self.up2(torch.cat([F.interpolate(m, scale_factor=2, mode="nearest"), h2], 1), e)
        u1 = self.up1(torch.cat([F.interpolate(u2, scale_factor=2, mode="nearest"), h1], 1), e)
        return self.conv_out(F.silu(self.norm_out(u1)))

    def loss(self, x, y):
        x0 = 2 * x - 1  # x is pixel/255
        n = x.shape[0]
        t = torch.randint(0, self.steps, (n,))
        eps = torch.randn_like(x0)
        ab = self.alpha_bar[t].to(x0.dtype)[:, None, None, None]
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        return (self(xt, t, y) - eps).pow(2).flatten(1).mean(1).mean()


MODELS = {"cvae": (CVAE, 128), "ddpm-s": (DDPMS, 64)}


def names():
    out, counts = {}, {}
    for name, (cls, _) in MODELS.items():
        sd = cls().state_dict()
        out[name] = [[k, list(v.shape)] for k, v in sd.items()]
        counts[name] = sum(v.numel() for v in sd.values())
    out["params"] = counts
    return out


def time_model(name, batch, steps, warmup, channels_last):
    cls, _ = MODELS[name]
    torch.manual_seed(0)
    model = cls()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    # convert before building the optimizer so Adam's state is allocated in the same format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, C, S, S).contiguous(memory_format=fmt)
    y = torch.randint(0, K, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model.loss(x, y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    times, loss = [], float("nan")
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step()  # .item() inside is a no-op sync on CPU, kept so the loss can be checked
        times.append((time.perf_counter() - t0) * 1e3)
    if not math.isfinite(loss):
        raise RuntimeError(f"{name}: non-finite loss {loss}")
    return {"median_ms": statistics.median(times), "min_ms": min(times), "last_loss": loss}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=["cvae", "ddpm-s", "both"], default="both")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=None,
                   help="override the per-model default (cvae 128, ddpm-s 64)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--names", action="store_true",
                   help="print state_dict() names, shapes and parameter counts as JSON, then exit")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    a = p.parse_args()

    if a.names:
        print(json.dumps(names()))
        return

    torch.set_num_threads(a.threads)
    torch.autograd.set_detect_anomaly(False)
    torch.backends.mkldnn.enabled = True
    which = list(MODELS) if a.model == "both" else [a.model]
    result = {"impl": "torch", "version": torch.__version__, "threads": a.threads,
              "steps": a.steps, "warmup": a.warmup, "optimizer": "Adam lr 1e-3",
              "mkldnn_available": torch.backends.mkldnn.is_available(),
              "mkldnn_enabled": torch.backends.mkldnn.enabled, "models": {}}
    for name in which:
        batch = a.batch or MODELS[name][1]
        r = {"batch": batch}
        for fmt, cl in (("default", False), ("channels_last", True)):
            r[fmt] = time_model(name, batch, a.steps, a.warmup, cl)
        r["fastest"] = min(("default", "channels_last"), key=lambda f: r[f]["median_ms"])
        result["models"][name] = r

    if a.json:
        print(json.dumps(result))
        return
    for name, r in result["models"].items():
        for fmt in ("default", "channels_last"):
            m = r[fmt]
            print(f"torch {torch.__version__}: {name} train step, batch {r['batch']}, "
                  f"{a.threads} threads, {fmt}: median {m['median_ms']:.3f} ms/step, "
                  f"min {m['min_ms']:.3f} ms ({a.steps} steps, loss {m['last_loss']:.4f})")
        print(f"  {name}: fastest is {r['fastest']}")


if __name__ == "__main__":
    main()
