"""Explicit layers over bitexact's ops (the same results as the patched torch modules)."""
import torch

from . import functional as F


class Softmax(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)


class LogSoftmax(Softmax):
    def forward(self, x):
        return F.log_softmax(x, self.dim)


class LayerNorm(torch.nn.LayerNorm):
    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class RMSNorm(torch.nn.Module):
    def __init__(self, normalized_shape, eps=1e-6, elementwise_affine=True, dtype=None):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(self.normalized_shape, dtype=dtype)) if elementwise_affine else None

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)


class Embedding(torch.nn.Embedding):
    def forward(self, ids):
        return F.embedding(ids, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)


class EmbeddingBag(torch.nn.EmbeddingBag):
    def forward(self, input, offsets=None, per_sample_weights=None):
        return F.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                               self.mode, self.sparse, per_sample_weights, self.include_last_offset,
                               self.padding_idx)


class Dropout(torch.nn.Dropout):
    """Dropout keyed by (seed, step) of the enclosing `bitexact.torch.keyed` block, a tag (the
    `tag` argument, else set by name_modules() to the module's qualified name) and the global
    index of each sample."""

    def __init__(self, p=0.5, inplace=False, tag=None):
        super().__init__(p, inplace)
        self.tag = tag

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.inplace, tag=self.tag)


class CrossEntropyLoss(torch.nn.CrossEntropyLoss):
    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)


class NLLLoss(torch.nn.NLLLoss):
    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


def name_modules(model):
    """Gives every bitexact Dropout without a tag its qualified name as tag."""
    for name, m in model.named_modules():
        if isinstance(m, Dropout) and m.tag is None:
            m.tag = "dropout:" + name
    return model


class Linear(torch.nn.Linear):
    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class Conv2d(torch.nn.Conv2d):
    def forward(self, x):
        if self.padding_mode != "zeros":
            raise NotImplementedError("bitexact.nn.Conv2d: padding_mode=%r" % self.padding_mode)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class MaxPool2d(torch.nn.MaxPool2d):
    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)


class AvgPool2d(torch.nn.AvgPool2d):
    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)


class AdaptiveAvgPool2d(torch.nn.AdaptiveAvgPool2d):
    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)
