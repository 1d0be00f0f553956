"""Peer: PyTorch ``normflows`` Glow (``nf.flows.GlowBlock`` + ``nf.flows.Squeeze`` in an
``nf.MultiscaleFlow``), built as in normflows' Glow example (examples/glow.ipynb) adapted to
1 x 8 x 8 inputs, L=2 levels, K=4 blocks per level, hidden width 64, split_mode='channel',
scale=True, and no class conditioning: each level's base is ``nf.distributions.DiagGaussian``
(per-dimension trainable mean / log-scale, the class-free counterpart of the example's
``ClassCondDiagGaussian``) and ``MultiscaleFlow(..., class_cond=False)``.

Each GlowBlock is affine coupling (ConvNet2d 3x3 -> 1x1 -> 3x3, ReLU, zero-initialised last
layer, sigmoid(h + 2) scale) + LU-parameterised invertible 1x1 conv + data-initialised ActNorm.
Eager PyTorch on the CPU, ``torch.optim.Adam(lr=1e-3)``. Images are NCHW.

    python bench/peers/normflows_glow.py --figure=throughput --out=r.json
    python bench/peers/normflows_glow.py --figure=quality --budget_s=120 --out=q.json
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import protocol as P  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    P.add_common_args(parser)
    parser.add_argument(
        '--threads',
        type=int,
        default=0,
        help="torch.set_num_threads (0: leave torch's default, = number of cores here)",
    )
    args = parser.parse_args()

    t0 = time.perf_counter()
    import normflows as nf
    import torch

    import_s = time.perf_counter() - t0
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    # torch.lu is deprecated; normflows' Invertible1x1Conv still calls it at construction.
    warnings.filterwarnings('ignore', message='.*torch.lu is deprecated.*')

    def build_flow() -> torch.nn.Module:
        L, K = P.GLOW_LEVELS, P.GLOW_STEPS_PER_LEVEL
        hidden = P.GLOW_HIDDEN
        h, w, c = P.IMAGE_SHAPE
        input_shape = (c, h, w)
        q0, merges, flows = [], [], []
        for i in range(L):
            flows_ = [
                nf.flows.GlowBlock(c * 2 ** (L + 1 - i), hidden, split_mode='channel', scale=True)
                for _ in range(K)
            ]
            flows_ += [nf.flows.Squeeze()]
            flows += [flows_]
            if i > 0:
                merges += [nf.flows.Merge()]
                latent_shape = (
                    input_shape[0] * 2 ** (L - i),
                    input_shape[1] // 2 ** (L - i),
                    input_shape[2] // 2 ** (L - i),
                )
            else:
                latent_shape = (
                    input_shape[0] * 2 ** (L + 1),
                    input_shape[1] // 2**L,
                    input_shape[2] // 2**L,
                )
            q0 += [nf.distributions.DiagGaussian(latent_shape)]
        return nf.MultiscaleFlow(q0, flows, merges, class_cond=False)

    def build() -> P.PeerModel:
        torch.manual_seed(args.seed)
        model = build_flow()
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=P.LEARNING_RATE)

        def train_step(x):
            opt.zero_grad(set_to_none=True)
            loss = model.forward_kld(x)
            loss.backward()
            opt.step()
            return loss.item()

        def log_prob(x):
            with torch.no_grad():
                return model.log_prob(x, None).numpy()

        def sample(n):
            with torch.no_grad():
                x, _ = model.sample(n)
            return x.numpy()

        n_raw = int(sum(p.numel() for p in params))
        # Invertible1x1Conv(use_lu=True) stores full c x c L and U matrices but uses only their
        # strict triangles: c*c + c entries per layer are never used.
        unused = sum(
            m.num_channels**2 + m.num_channels
            for m in model.modules()
            if isinstance(m, nf.flows.Invertible1x1Conv) and m.use_lu
        )
        latent_shapes = [list(q.shape) for q in model.q0]
        return P.PeerModel(
            to_native=lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))),
            train_step=train_step,
            log_prob=log_prob,
            sample=sample,
            get_weights=lambda: copy.deepcopy(model.state_dict()),
            set_weights=lambda sd: model.load_state_dict(sd),
            n_params=n_raw,
            info={
                'n_params_effective': n_raw - unused,
                'latent_shapes': latent_shapes,
                'torch_num_threads': torch.get_num_threads(),
                'torch_num_interop_threads': torch.get_num_interop_threads(),
            },
        )

    P.run_figure(
        args,
        peer='normflows_glow' + (f'_t{args.threads}' if args.threads > 0 else ''),
        build=build,
        config={
            'library': 'normflows.MultiscaleFlow + GlowBlock',
            'mode': 'eager',
            'torch_threads_arg': args.threads,
            'optimizer': 'torch.optim.Adam',
            'coupling': 'GlowBlock(split_mode=channel, scale=True, scale_map=sigmoid), use_lu',
            'base': 'DiagGaussian per level (trainable), class_cond=False',
        },
        import_s=import_s,
    )


if __name__ == '__main__':
    main()
