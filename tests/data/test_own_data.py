"""Tests of tfp_flows/data/own.py and folder.py: folders of images and CSV tables."""

import os

import numpy as np
import pytest
from PIL import Image

from tfp_flows.data import make_dataset
from tfp_flows.data import own as own_data


def as_array(dataset):
    return np.concatenate(list(dataset.as_numpy_iterator()))


def _write_images(root, classes, per_class, size=(6, 4), mode='L', seed=0):
    """Random PNGs under `root` (in class subfolders unless `classes` is None).

    Returns {file path: uint8 pixels [H, W, C]}; `size` is (width, height), as Pillow's.
    """
    rng = np.random.default_rng(seed)
    written = {}
    for name in classes or [None]:
        folder = root if name is None else os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            channels = 1 if mode == 'L' else 3
            pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
            path = os.path.join(folder, f'{i:02d}.png')
            Image.fromarray(pixels[..., 0] if mode == 'L' else pixels, mode).save(path)
            written[path] = pixels
    return written


def test_split_indices_are_fixed_disjoint_and_complete():
    splits = {split: own_data.split_indices(25, split) for split in own_data.SPLIT_FRACTIONS}
    assert [len(i) for i in splits.values()] == [21, 2, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate(list(splits.values()))), np.arange(25))
    np.testing.assert_array_equal(own_data.split_indices(25, 'test'), splits['test'])
    with pytest.raises(ValueError, match=r"`split` must be one of .* for your own data; got 'dev'"):
        own_data.split_indices(25, 'dev')


def test_folder_with_class_subfolders_gives_labelled_splits(tmp_path):
    written = _write_images(str(tmp_path), ['cat', 'dog', 'eel'], per_class=10)
    pixels_by_class = {
        name: {p.tobytes() for f, p in written.items() if f'/{name}/' in f}
        for name in ('cat', 'dog', 'eel')
    }
    seen = []
    for split, expected_count in (('train', 24), ('validation', 3), ('test', 3)):
        dataset, info = make_dataset(
            f'folder:{tmp_path}', split, 8, shuffle=False, conditional=True, seed=0
        )
        assert info.event_shape == (4, 6, 1) and info.num_bins == 256
        assert info.num_examples == {split: expected_count}
        assert info.conditional_shape == (3,) and info.class_names == ('cat', 'dog', 'eel')
        batches = list(dataset.as_numpy_iterator())
        x = np.concatenate([b[0] for b in batches])
        c = np.concatenate([b[1] for b in batches])
        assert x.dtype == np.float32 and 0 <= x.min() and x.max() < 1
        pixels = np.floor(x.astype(np.float64) * 256).astype(np.uint8)
        for image, context in zip(pixels, c, strict=True):
            assert context.sum() == 1
            assert image.tobytes() in pixels_by_class[info.class_names[int(context.argmax())]]
        seen += [p.tobytes() for p in pixels]
    assert sorted(seen) == sorted(p.tobytes() for p in written.values())


def test_folder_without_subfolders_is_unlabelled(tmp_path):
    _write_images(str(tmp_path), None, per_class=10, mode='RGB', size=(4, 4))
    dataset, info = make_dataset(f'folder:{tmp_path}', 'train', 4, shuffle=True, seed=1)
    assert info.event_shape == (4, 4, 3) and info.conditional_shape is None
    assert as_array(dataset).shape == (8, 4, 4, 3)
    with pytest.raises(ValueError, match=r'has no class subfolders, so it gives no labels'):
        make_dataset(f'folder:{tmp_path}', 'train', 4, shuffle=False, conditional=True)


def test_folder_images_are_cropped_and_resized_to_the_image_size(tmp_path):
    _write_images(str(tmp_path / 'a'), None, per_class=5, size=(12, 8))
    _write_images(str(tmp_path / 'b'), None, per_class=5, size=(8, 8), mode='RGB', seed=1)
    with pytest.raises(ValueError, match=r'differ in size: .*is 12x8 and .*is 8x8 .*image_size'):
        make_dataset(f'folder:{tmp_path}', 'train', 4, shuffle=False)
    dataset, info = make_dataset(f'folder:{tmp_path}', 'train', 4, shuffle=False, image_size=4)
    assert info.event_shape == (4, 4, 3)  # One RGB image makes every image RGB.
    assert as_array(dataset).shape == (8, 4, 4, 3)


@pytest.mark.parametrize(
    ('setup', 'error', 'message'),
    [
        (lambda root: None, ValueError, r'holds no images \(files ending in \.bmp'),
        (
            lambda root: (root / 'bad.png').write_bytes(b'not a png'),
            ValueError,
            r"Cannot read image '.*bad\.png'",
        ),
        (
            lambda root: (_write_images(str(root), ['a'], 2), _write_images(str(root), None, 1)),
            ValueError,
            r'has images both directly in it .*and in subfolders',
        ),
        (
            lambda root: (_write_images(str(root), ['a'], 2), os.makedirs(root / 'b')),
            ValueError,
            r'Class subfolder\(s\) b of folder:.* hold no images',
        ),
    ],
    ids=['empty', 'unreadable', 'mixed_layout', 'empty_class'],
)
def test_folder_errors(tmp_path, setup, error, message):
    setup(tmp_path)
    with pytest.raises(error, match=message):
        make_dataset(f'folder:{tmp_path}', 'train', 4, shuffle=False)


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'.*nowhere' is not a directory"):
        make_dataset(f'folder:{tmp_path / "nowhere"}', 'train', 4, shuffle=False)


def _write_table(path, rows=60, seed=0):
    """A CSV with columns x0, x1 (x1 in other units), a label context and a text column."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, rows)
    x0 = rng.normal(size=rows) + label
    x1 = 100.0 + 20.0 * rng.normal(size=rows)
    with open(path, 'w') as f:
        f.write('x0,x1,label,note\n')
        for a, b, k in zip(x0, x1, label, strict=True):
            f.write(f'{float(a)!r},{float(b)!r},{k},row\n')
    return np.stack([x0, x1], axis=-1), label[:, None].astype(np.float64)


def test_csv_columns_splits_and_training_statistics(tmp_path):
    path = tmp_path / 'table.csv'
    x, c = _write_table(path)
    train = own_data.split_indices(60, 'train')
    dataset, info = make_dataset(
        f'csv:{path}',
        'train',
        16,
        shuffle=False,
        conditional=True,
        columns=['x0', 'x1'],
        context_columns=['label'],
    )
    assert info.event_shape == (2,) and info.num_bins is None and info.conditional_shape == (1,)
    assert info.num_examples == {'train': 48}
    batches = list(dataset.as_numpy_iterator())
    np.testing.assert_allclose(np.concatenate([b[0] for b in batches]), x[train], rtol=1e-6)
    np.testing.assert_allclose(np.concatenate([b[1] for b in batches]), c[train])
    statistics = info.statistics
    assert statistics.columns == ('x0', 'x1') and statistics.context_columns == ('label',)
    np.testing.assert_allclose(statistics.mean, x[train].mean(axis=0))
    np.testing.assert_allclose(statistics.scale, x[train].std(axis=0))
    np.testing.assert_allclose(statistics.context_scale, c[train].std(axis=0))
    test, test_info = make_dataset(f'csv:{path}', 'test', 16, shuffle=False, columns=['x0', 'x1'])
    assert as_array(test).shape == (6, 2) and test_info.statistics.context_columns == ()
    assert test_info.statistics == own_data.table_statistics(
        str(path), x, c[:, :0], ('x0', 'x1'), ()
    )


@pytest.mark.parametrize(
    ('content', 'kwargs', 'message'),
    [
        ('a,b\n1,2\n,4\n5,6\n7,8\n', {}, r"missing value in column 'a', row 3 .*got ''"),
        ('a,b\n1,2\n3,NA\n5,6\n7,8\n', {}, r"missing value in column 'b', row 3 .*got 'NA'"),
        ('a,b\n1,2\n3,x\n5,6\n7,8\n', {}, r"column 'b' is not numeric: row 3 .*holds 'x'"),
        ('a,b\n1,2\n3,4\n5,6\n7,8\n', dict(columns=['a', 'z']), r"has no column\(s\) 'z'"),
        ('a,b\n1,2\n3,4\n', dict(columns=['a', 'a']), r'`columns` must be None or .*distinct'),
        ('a,b\n1,2\n1,4\n1,6\n1,8\n', {}, r"Column\(s\) \['a'\] of .* are constant"),
        ('a,b\n1,2\n3,4\n5,6\n', {}, r'has 3 data row\(s\); it needs at least 4: one each'),
        ('', {}, r'is empty; it needs a header row'),
        ('a,b\n1,2\n3\n5,6\n7,8\n', {}, r'row 3 has 1 fields; the header has 2'),
        ('a,b\n1,2\n3,inf\n5,6\n7,8\n', {}, r"column 'b', row 3 holds 'inf', not a finite number"),
    ],
)
def test_csv_errors(tmp_path, content, kwargs, message):
    path = tmp_path / 'table.csv'
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        make_dataset(f'csv:{path}', 'train', 4, shuffle=False, **kwargs)


def test_csv_context_columns_go_with_conditional(tmp_path):
    path = tmp_path / 'table.csv'
    _write_table(path)
    with pytest.raises(ValueError, match=r'conditional exactly when it has context columns'):
        make_dataset(f'csv:{path}', 'train', 4, shuffle=False, columns=['x0'], conditional=True)
    with pytest.raises(ValueError, match=r'conditional exactly when it has context columns'):
        make_dataset(f'csv:{path}', 'train', 4, shuffle=False, context_columns=['label'])
    with pytest.raises(ValueError, match=r"`columns` does not apply to dataset 'digits'"):
        make_dataset('digits', 'train', 4, shuffle=False, columns=['x0'])
    with pytest.raises(ValueError, match=rf"`image_size` does not apply to CSV table 'csv:{path}'"):
        make_dataset(f'csv:{path}', 'train', 4, shuffle=False, image_size=8)
    with pytest.raises(ValueError, match=r"`augment` does not apply to image folder 'folder:"):
        make_dataset(f'folder:{tmp_path}', 'train', 4, shuffle=False, augment='flip')
    with pytest.raises(FileNotFoundError, match=r'csv:.*missing\.csv: no such file'):
        make_dataset(f'csv:{tmp_path / "missing.csv"}', 'train', 4, shuffle=False)
