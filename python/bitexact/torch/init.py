"""Initializers keyed by (seed, parameter name): the same values on any machine, thread count
or ISA, whatever order the parameters are created or initialized in. Values come from the
(seed, step=0, tag=tag_of(name)) Philox stream of the C++ library (uniform: 24/53-bit;
normal: Box-Muller with the library's own log/sincos)."""
import math

import torch

from ._lib import ops, tag_of


def _draw(t, dist, seed, name):
    return ops.random(list(t.shape), dist, int(seed), 0, tag_of(name), 0, t.dtype == torch.float64)


def _check(t, fn):
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError("bitexact.init.%s: dtype %s not supported (float32, float64)" % (fn, t.dtype))


@torch.no_grad()
def uniform_(t, a=0.0, b=1.0, *, seed, name):
    _check(t, "uniform_")
    return t.copy_(_draw(t, "uniform", seed, name) * (b - a) + a)


@torch.no_grad()
def normal_(t, mean=0.0, std=1.0, *, seed, name):
    _check(t, "normal_")
    return t.copy_(_draw(t, "normal", seed, name) * std + mean)


@torch.no_grad()
def trunc_normal_(t, mean=0.0, std=1.0, a=-2.0, b=2.0, *, seed, name):
    """Normal(mean, std) truncated to [a, b] by keyed rejection (see trunc_normal in the op library)."""
    _check(t, "trunc_normal_")
    z = ops.trunc_normal(list(t.shape), int(seed), 0, tag_of(name), (a - mean) / std, (b - mean) / std,
                         t.dtype == torch.float64)
    return t.copy_((z * std + mean).clamp_(a, b))


@torch.no_grad()
def kaiming_uniform_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, seed, name):
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    bound = torch.nn.init.calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(t, -bound, bound, seed=seed, name=name)


@torch.no_grad()
def xavier_uniform_(t, gain=1.0, *, seed, name):
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(t)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(t, -bound, bound, seed=seed, name=name)


@torch.no_grad()
def reset_parameters(model, seed):
    """Initializes every parameter of `model` keyed by (seed, its qualified name), with torch's
    default schemes: Linear/Conv weights kaiming_uniform(a=sqrt(5)) and biases
    uniform(+-1/sqrt(fan_in)); Embedding/EmbeddingBag normal; norm weights 1, biases 0; any
    other >= 2-D parameter kaiming_uniform(a=sqrt(5)), 1-D ones zeros."""
    done = set()
    for mname, m in model.named_modules():
        pre = mname + "." if mname else ""
        w = getattr(m, "weight", None)
        b = getattr(m, "bias", None)
        if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)) and isinstance(w, torch.nn.Parameter):
            normal_(w, seed=seed, name=pre + "weight")
            done.add(id(w))
        elif isinstance(w, torch.nn.Parameter) and w.dim() >= 2:
            kaiming_uniform_(w, a=math.sqrt(5), seed=seed, name=pre + "weight")
            done.add(id(w))
            if isinstance(b, torch.nn.Parameter):
                fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(w)
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                uniform_(b, -bound, bound, seed=seed, name=pre + "bias")
                done.add(id(b))
    for name, p in model.named_parameters():
        if id(p) in done:
            continue
        if p.dim() >= 2:
            kaiming_uniform_(p, a=math.sqrt(5), seed=seed, name=name)
        elif name.endswith("weight"):
            p.fill_(1.0)
        else:
            p.zero_()
    return model
