"""A run's datasets, dequantized as its config says: the one place that decides dequantization
(uniform noise in the pipeline, or the trainer's q(u | k) on discrete batches). Epoch e's
training batches are a function of (config.seed, e); evaluation noise is fixed (`EVALUATION_SEED`).
"""

import dataclasses

import tensorflow as tf

from tfp_flows import data
from tfp_flows.run import restore

__all__ = ['EVALUATION_SEED', 'RunData', 'load']

EVALUATION_SEED = 0


@dataclasses.dataclass(frozen=True)
class RunData:
    """The datasets of a run (`load`): the batched splits, dequantized unless `variational`;
    `info`, the `DatasetInfo`; `epoch`, the training data's epoch variable; `pixels(split)`,
    that split's discrete images, batched; `recorded`, the `schema.RECORDED` fields."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    info: data.DatasetInfo
    epoch: tf.Variable
    variational: bool
    pixels: object
    recorded: dict


def load(config):
    """The datasets of the run of `config` (checked by `tfp_flows.run.schema`): a `RunData`.

    Raises:
      ValueError: config values that do not fit the data (a variational dequantizer or
        importance-weighted figures for continuous data, a preprocessing for the wrong kind
        of data), and what `tfp_flows.data.make_dataset` raises.
    """
    variational = restore.is_variational(config)
    name, splits, batch_size = config.data.name, config.data.splits, config.train.batch_size
    common = {k: config.data[k] for k in ('data_dir', 'image_size', 'conditional', 'columns')}
    common['context_columns'] = config.data.context_columns
    epoch = tf.Variable(0, trainable=False, dtype=tf.int64, name='data_epoch')
    try:
        train, info = data.make_dataset(
            name,
            splits.train,
            batch_size,
            shuffle=True,
            seed=config.seed,
            epoch=epoch,
            augment=config.data.augment,
            drop_remainder=True,
            dequantize=not variational,
            **common,
        )
    except data.BatchSizeError as error:  # The run's own words: the flag to change.
        raise ValueError(
            f'`config.train.batch_size` ({batch_size}) is larger than the '
            f'{error.num_examples} examples of the training split of {name!r}: set it to at '
            f'most {error.num_examples} (--config.train.batch_size={error.num_examples}).'
        ) from None
    _check_fits(config, info)

    def evaluation(split, dequantize=not variational):
        return data.make_dataset(
            name, split, batch_size, shuffle=False, seed=EVALUATION_SEED, epoch=0,
            dequantize=dequantize, **common,
        )[0]  # fmt: skip

    recorded = {
        'data.event_shape': list(info.event_shape),
        'data.num_bins': info.num_bins,
        'model.conditional_shape': info.conditional_shape and list(info.conditional_shape),
    }
    return RunData(
        train,
        evaluation(splits.validation),
        evaluation(splits.test),
        info,
        epoch,
        variational,
        lambda split: evaluation(split, dequantize=False),
        recorded,
    )


def _check_fits(config, info):
    """Refuses the config values that do not fit the kind of data `info` describes."""
    images = len(info.event_shape) == 3
    if images == (config.model.preprocessing is None):
        expected = "'centre' or 'logit' for image data" if images else 'None for vector data'
        raise ValueError(
            f'`config.model.preprocessing` must be {expected} (event shape '
            f'{list(info.event_shape)}; e.g. the realnvp_moons recipe); got '
            f'{config.model.preprocessing!r}.'
        )
    if images and info.num_bins is not None:
        return
    for field, value, alright in (
        ('dequantizer.kind', config.dequantizer.kind, 'uniform'),
        ('eval.iw_samples', config.eval.iw_samples, 0),
    ):
        if value != alright:
            raise ValueError(
                f'`config.{field}` ({value!r}) is for discrete images; data '
                f'{config.data.name!r} are continuous: set it to {alright!r}.'
            )
