"""The run behind `train.py`: config `schema`, `workdir`, `lock`, `cli` (no TensorFlow), and
`datasets`, `experiment` (`train_and_evaluate`), `callbacks`, `restore` (`restore_flow`).
Nothing is imported here: `from tfp_flows.run.restore import restore_flow`.
"""
