"""Tables at the edges a user touches (issue 21, "Tables and folders").

Kinds: a list of column names, wherever one enters (config fields, functions), may be one
comma-separated str, as a command line gives it; every split of own data is non-empty from 3
examples on (80/10/10, each at least one); a batch larger than the training split is refused
in the words of where the user is (the config field in a run).
"""

import ml_collections
import numpy as np
import pytest

from configs import realnvp_moons
from tfp_flows import checks
from tfp_flows.data import make_dataset, own
from tfp_flows.run import datasets, schema


def _table(path, rows):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(rows, 3))
    path.write_text('height,weight,age\n' + '\n'.join(','.join(map(str, r)) for r in values))
    return f'csv:{path}'


# Every public place a list of column names enters, as (call, what it returns as the names).
COLUMN_LISTS = {
    'config.data.columns': lambda names, path: schema.check_config(
        _config(path, columns=names)
    ).data.columns,
    'config.data.context_columns': lambda names, path: schema.check_config(
        _config(path, columns='age', context_columns=names, conditional=True)
    ).data.context_columns,
    'read_csv columns': lambda names, path: own.read_csv(path, names)[2],
    'read_csv context_columns': lambda names, path: own.read_csv(path, 'age', names)[3],
    'make_dataset columns': lambda names, path: make_dataset(
        f'csv:{path}', 'train', 2, shuffle=False, columns=names
    )[1].statistics.columns,
    'make_dataset context_columns': lambda names, path: make_dataset(
        f'csv:{path}', 'train', 2, shuffle=False, columns='age', context_columns=names,
        conditional=True,
    )[1].statistics.context_columns,
}  # fmt: skip


def _config(path, **data):
    """The vector recipe for the table at `path`, as the nested dicts check_config takes."""
    config = realnvp_moons.get_config().to_dict()
    config['data'].update(name=f'csv:{path}', **data)
    return config


@pytest.mark.parametrize('place', COLUMN_LISTS.values(), ids=COLUMN_LISTS)
@pytest.mark.parametrize('names', ['height,weight', ' height , weight', ('height,weight',),
                                   ['height', 'weight'], ('height', 'weight')])  # fmt: skip
def test_a_column_list_may_be_one_comma_separated_str(tmp_path, place, names):
    path = tmp_path / 'table.csv'
    _table(path, 20)
    assert place(names, str(path)) == ('height', 'weight')


@pytest.mark.parametrize('place', COLUMN_LISTS.values(), ids=COLUMN_LISTS)
@pytest.mark.parametrize('names', ['', 'height,,weight', 'height,height', 3, ['height', 1]])
def test_a_bad_column_list_is_refused_by_name(tmp_path, place, names):
    path = tmp_path / 'table.csv'
    _table(path, 20)
    with pytest.raises(ValueError, match=r'columns` must be .*column names'):
        place(names, str(path))


def test_the_command_lines_comma_list_reaches_the_run_as_names():
    flag_value = ('height,weight',)  # What ml_collections makes of --config.data.columns=a,b
    assert checks.COLUMN_NAMES.check('columns', flag_value) == ('height', 'weight')


@pytest.mark.parametrize('count', range(3, 41))
def test_every_split_of_own_data_is_non_empty_from_three_examples(count):
    splits = [own.split_indices(count, split) for split in own.SPLIT_FRACTIONS]
    assert all(len(s) >= 1 for s in splits)
    np.testing.assert_array_equal(np.sort(np.concatenate(splits)), np.arange(count))


def test_the_split_is_80_10_10():
    assert [len(own.split_indices(300, s)) for s in own.SPLIT_FRACTIONS] == [240, 30, 30]


@pytest.mark.parametrize('rows', [1, 2, 3])
def test_a_table_too_small_to_split_says_how_many_rows_it_needs(tmp_path, rows):
    name = _table(tmp_path / 'table.csv', rows)
    with pytest.raises(ValueError, match=rf'has {rows} data row\(s\); it needs at least 4'):
        make_dataset(name, 'train', 1, shuffle=False)


def test_the_smallest_table_gives_every_split(tmp_path):
    name = _table(tmp_path / 'table.csv', 4)
    sizes = {
        split: len(list(make_dataset(name, split, 1, shuffle=False)[0]))
        for split in own.SPLIT_FRACTIONS
    }
    assert sizes == {'train': 2, 'validation': 1, 'test': 1}


def test_a_batch_larger_than_the_training_split_names_the_config_field(tmp_path):
    name = _table(tmp_path / 'table.csv', 300)
    config = schema.check_config(_config(tmp_path / 'table.csv', columns='height,weight'))
    assert config.train.batch_size == 256 and name == config.data.name
    message = r'`config.train.batch_size` \(256\) .* 240 examples .*--config.train.batch_size=240'
    with pytest.raises(ValueError, match=message):
        datasets.load(config)
    config = ml_collections.ConfigDict(config.to_dict())
    config.train.batch_size = 240
    assert datasets.load(config).info.num_examples['train'] == 240
