"""The default recipe: the best model on scikit-learn's 8x8 digits (ships with the package).

Real NVP (2 scales of 4 couplings, width 64) on the logit of the data (margin 0.01), with
noise from a variational dequantizer trained jointly (Flow++), sized to train on 2 CPU cores
in a few minutes. Digits has 1,257 training images, so the model is small, regularised with
weight decay, and the best epoch by validation bits/dim is the one kept and tested. Chosen by
validation bits/dim among 15 digits candidates (bench/results/digits_candidates.jsonl: Glow and
Real NVP, centred or logit, uniform or variational noise, sizes, margins, rates; configs/
glow_digits.py is the best Glow): measured 2026-11-30 with `python train.py`, best epoch 58 of
60, validation / test 1.931 / 1.926 bits/dim (one-sample bound), importance-weighted test
1.842 (32 draws); 96 s wall, 104 s of CPU, while other jobs took 18% of the 2 cores
(bench/results/digits_recipes.md; 300 s wall and 123 s of CPU when they took 79%). The
per-pixel histogram baseline scores 2.42 (tfp_flows.tools.baselines); the Glow this recipe used to
be (centred, uniformly dequantized) 2.46-2.48.
A model this small is hundreds of small ops: one thread per op, independent ops side by side
and 8 steps per call into TF train it 1.46x faster on 2 CPU cores than TF's defaults
(bench/README.md); the larger recipes give each op every core again.
"""

import ml_collections
from ml_collections import config_dict


def get_config():
    config = ml_collections.ConfigDict()
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.name = 'digits'  # 'digits', a 2-D toy ('moons', ...) or a TFDS image dataset.
    config.data.data_dir = config_dict.placeholder(str)  # TFDS data_dir; None: TFDS default.
    config.data.image_size = config_dict.placeholder(int)  # Area-resize images to this side.
    config.data.splits = ml_collections.ConfigDict(
        dict(train='train', validation='validation', test='test')
    )
    # A conditional flow p(x | c): batches (x, c), c the one-hot label (digits, labelled TFDS
    # data, folder:PATH with class subfolders) or a CSV's context columns. The run records
    # c's shape as config.model.conditional_shape in config.json, as data.event_shape.
    config.data.conditional = False
    # csv:PATH data: the columns modelled (None: all but the context columns) and the context
    # columns of a conditional model. The model works in the CSV's units (own_data).
    config.data.columns = config_dict.placeholder(tuple)
    config.data.context_columns = config_dict.placeholder(tuple)
    config.data.augment = config_dict.placeholder(str)  # 'flip': random left-right flips.

    config.model = ml_collections.ConfigDict()
    config.model.family = 'real_nvp'  # 'glow' or 'real_nvp'.
    config.model.num_levels = 2
    config.model.num_steps = 4  # Flow steps per level.
    config.model.hidden_channels = 64  # Width of each coupling network.
    config.model.coupling = 'affine'  # 'affine' or 'additive'.
    config.model.permutation = 'lu'  # 'lu', 'plain', 'reverse' or 'shuffle'.
    config.model.split_prior = False  # Learned prior of the factored-out channels.
    config.model.log_scale_bound = 2.0  # Soft clamp of every log-scale.
    config.model.scale = 'tanh'  # Coupling scale: 'tanh' (soft clamp) or Glow's 'sigmoid'.
    # 'centre' (x - 1/2) or 'logit' (Real NVP's) for images; None for vector data.
    config.model.preprocessing = config_dict.FieldReference('logit', field_type=str)
    config.model.alpha = 0.01  # Margin of the logit preprocessing, in [0, 0.5).
    config.model.learn_top_prior = False  # Glow's learntop: a learned top-latent prior.
    # Dropout of the coupling networks' hidden units, in training only (not density-defining).
    config.model.dropout_rate = 0.0
    config.model.dtype = 'float32'

    # How discrete images become continuous data: 'uniform' noise (Theis et al. 2016), or
    # 'variational', noise from a small flow q(u | k) trained with the model on the bound
    # E_q[-log p(x) + log q(u | k)] + D log(num_bins) (Flow++). Images only. The sizes are q's.
    config.dequantizer = ml_collections.ConfigDict()
    config.dequantizer.kind = 'variational'
    config.dequantizer.num_steps = 4  # Couplings of q (>= 2).
    config.dequantizer.hidden_channels = 32  # Width of q's coupling and context networks.
    config.dequantizer.context_channels = 8  # Features of the image k that q is conditioned on.

    config.train = ml_collections.ConfigDict()
    config.train.strategy = 'auto'  # 'auto', 'one_device', 'mirrored' or 'multi_worker'.
    config.train.batch_size = 64  # Global batch, split over the replicas.
    config.train.epochs = 60
    config.train.optimizer = 'adamax'  # 'adam' or 'adamax'.
    config.train.learning_rate = 3e-3
    config.train.warmup_steps = 100
    config.train.cosine_decay = True  # Decay to 10% of the rate over the epochs.
    config.train.weight_decay = 0.01  # Decoupled, as in AdamW; None turns it off.
    config.train.clip_norm = 50.0  # Global gradient-norm clipping.
    config.train.accumulation_steps = 1  # Micro-batches per step (must divide batch_size).
    # Backprop without storing each flow step's activations: None, 'invert' (rebuild each
    # step's input from its output, flat memory in depth) or 'recompute' (tf.recompute_grad).
    config.train.memory_saving = config_dict.placeholder(str)
    # Polyak/EMA weights, used for validation, the best checkpoint, test, pictures and export.
    config.train.ema_momentum = config_dict.placeholder(float)
    config.train.jit_compile = False  # XLA for the train step.
    # None (float32), or Keras' policy 'mixed_bfloat16' / 'mixed_float16': the coupling and
    # prior networks compute in bfloat16 / float16, the rest in float32 (see
    # tfp_flows.mixed_precision); float16 gets dynamic loss scaling (the scale restarts at 2**15
    # when a run resumes: it is not checkpointed).
    config.train.mixed_precision = config_dict.placeholder(str)
    config.train.steps_per_execution = 8  # Train steps per call into TF (Keras' option).
    config.train.intra_op_threads = 1  # Threads one op may use; 0: TF's default (all cores).
    config.train.inter_op_threads = 0  # Ops run side by side; 0: TF's default (one per core).
    config.train.max_seconds = config_dict.placeholder(float)  # Stop training after this.
    config.train.early_stopping_patience = config_dict.placeholder(int)  # Epochs.
    config.train.sample_temperatures = (0.7, 1.0)
    config.train.sample_every_epochs = 10

    config.eval = ml_collections.ConfigDict()
    # Also report the importance-weighted test and validation bits/dim (images) with this
    # many noise draws per image, the tighter estimate papers report (Flow++); 0: off. 32
    # draws cost about 4 epochs of the default recipe's training time.
    config.eval.iw_samples = 32
    return config
