"""Real NVP for a numeric CSV table (--config.data.name=csv:PATH), regularised for small tables.

Flow++'s mixture-of-logistics CDF couplings (4 logistics) alternating halves of the row, MLP
conditioners, in the table's own units (the run standardises with the training split's
statistics inside the model). Chosen by validation log-likelihood on scikit-learn's breast
cancer and wine tables: the size and training among the affine candidates of bench/tables.py,
then the coupling kind (mean validation over the two tables, 3 seeds: mixture -0.030, affine
-0.038 nats/dim, level; results: bench/results/tables.md, tables_mixture.md). A table needs at least
`train.batch_size` (32) training rows: 40 rows in all (80/10/10 split). Example:
    python train.py --config=configs/realnvp_table.py --config.data.name=csv:table.csv
"""

from tfp_flows.run import schema


def get_config():
    config = schema.default_config()
    config.data.name = 'csv:table.csv'  # Your table: --config.data.name=csv:PATH.
    config.model.family = 'real_nvp'
    config.model.preprocessing = None  # Vector data: no preprocessing.
    config.dequantizer.kind = 'uniform'  # Continuous data: nothing to dequantize.
    config.eval.iw_samples = 0  # An estimate for discrete images only.
    config.model.split_prior = False
    config.model.coupling = 'logistic_mixture'
    config.model.num_steps = 8  # Couplings alternating between the two halves.
    config.model.hidden_channels = 64  # Units of each of the two hidden layers of the MLPs.
    config.model.dropout_rate = 0.1
    config.train.batch_size = 32
    config.train.epochs = 200
    config.train.early_stopping_patience = 40  # The best epoch by validation is kept.
    config.train.optimizer = 'adam'
    config.train.learning_rate = 3e-3
    config.train.warmup_steps = 20
    config.train.weight_decay = 0.1
    config.train.ema_momentum = 0.99  # Validated, tested and exported: the averaged weights.
    return config
