"""configs/realnvp_table.py: the vector recipe for CSV tables trains through the csv: path.

That the recipe loads and passes the schema is `tests/run/test_schema.py`'s table of recipes;
here a short run of it on a small table, whose test figure must be the restored flow's
log-likelihood of the test rows in the table's own units (what bench/tables.py reports).
"""

import math

import numpy as np

from configs import realnvp_table
from tfp_flows.data import own
from tfp_flows.run import experiment, restore


def test_the_table_recipe_trains_on_a_csv_in_its_units(tmp_path):
    rng = np.random.default_rng(0)
    rows = 100  # 80 training rows: more than the recipe's batch.
    a = rng.normal(size=rows)
    x = np.stack([1000.0 + 300.0 * a, 0.01 * rng.gamma(2.0, size=rows), 5.0 * a**2], axis=1)
    table = tmp_path / 'table.csv'
    table.write_text('area,smoothness,shape\n' + ''.join(f'{u},{v},{w}\n' for u, v, w in x))
    config = realnvp_table.get_config()
    config.data.name = f'csv:{table}'
    config.train.epochs = 2
    assert config.train.batch_size < len(own.split_indices(rows, 'train'))
    workdir = str(tmp_path / 'run')
    metrics = experiment.train_and_evaluate(config, workdir, verbose=0)
    assert metrics['epochs_trained'] == 2 and math.isfinite(metrics['test_nats_per_dim'])
    test_rows = x[own.split_indices(rows, 'test')].astype(np.float32)
    log_p = restore.restore_flow(workdir).log_prob(test_rows).numpy()
    np.testing.assert_allclose(-log_p.mean() / 3, metrics['test_nats_per_dim'], rtol=1e-5)
