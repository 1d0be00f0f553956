"""Restoring a run's checkpoints: a mismatch or damage is a clear error, never a silent load."""

import tensorflow as tf
from absl import logging

__all__ = ['restore', 'restore_newest_readable']


def restore(checkpoint, path, partial=False):
    """Restores checkpoint `path`; `ValueError` if it is damaged or holds another model.

    Every object of `checkpoint` must be found in the file. With `partial`, values in the file
    that `checkpoint` does not hold (the optimizer's, when only the flow is restored) are
    expected, so TensorFlow does not warn about each of them.
    """
    if not tf.io.gfile.exists(path + '.index'):
        raise ValueError(f'Checkpoint {path} is incomplete: {path}.index does not exist.')
    try:
        status = checkpoint.restore(path)
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as error:
        raise ValueError(
            f'Checkpoint {path} does not match the model built from the config: {error} '
            'Use the config the checkpoint was trained with, or a new --workdir.'
        ) from error
    except (IndexError, tf.errors.OpError) as error:  # IndexError: a truncated data file.
        raise ValueError(f'Checkpoint {path} is damaged or incomplete: {error}') from error
    if partial:
        status.expect_partial()


def restore_newest_readable(checkpoint, directory):
    """Restores the newest checkpoint in `directory` that loads; returns its path, or None.

    TF writes a checkpoint's files before it points the `checkpoint` state file at them, so a
    run killed while saving resumes from the previous checkpoint. A checkpoint damaged later
    (a lost or truncated file) is skipped, with a warning, for the older one kept beside it.
    """
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return None
    paths = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    newest_error = None
    for path in reversed(paths):
        try:
            restore(checkpoint, path)
        except ValueError as error:
            newest_error = newest_error or error
            continue
        if newest_error:
            logging.warning('%s Skipping it for the older %s.', newest_error, path)
        return path
    raise newest_error
