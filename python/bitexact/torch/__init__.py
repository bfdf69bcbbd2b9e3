"""bitexact.torch: PyTorch ops whose bits do not depend on threads, ISA or batch size.

    import bitexact.torch as bt
    with bt.patch():                  # routes torch / F / Tensor calls to bitexact's ops
        loss = model(x)...
    bt.functional.softmax(x, -1)      # or call the ops directly; bt.nn has modules

Written against what torch 1.13 and 2.x share (TORCH_LIBRARY, torch.ops.load_library,
torch.autograd.Function with forward(ctx, ...)). Thread count: torch.get_num_threads() is
handed to every C++ call, whose parallel work runs on torch's own intra-op threads
(threads_backend(); one set of threads for torch's ops and ours); the ISA follows BITEXACT_ISA or set_isa() (isa() says which: the
op library is built once per ISA and picks the best of this CPU at load)."""
from ._lib import (LIBRARY_PATH, available_isas, isa, isa_variant, ops, set_isa, set_threads_backend, tag_of,
                   threads_backend)
from ._keys import Key, keyed
from . import functional, init, nn, data
from .functional import (adaptive_avg_pool2d, avg_pool2d, bmm, conv2d, cross_entropy, dropout, embedding,
                         embedding_bag, index_add, layer_norm, linear, log_softmax, matmul, max_pool2d, mean, mm,
                         nll_loss, rms_norm, scatter_add, scatter_reduce, softmax, sum)
from .data import Sampler
from .patch import patch, unpatch, UnsupportedOpError, supported_ops
from ._nondeterminism import find_nondeterminism, format_report
