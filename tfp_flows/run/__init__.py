"""The run behind `train.py`: config schema, workdir and lock, data, experiment, restore.

`schema` (every config field once), `workdir` (reruns and what a workdir holds), `lock`
and `cli` (the terminal) import no TensorFlow, so `train.py` refuses bad flags, configs and
workdirs, and answers a finished run, before TensorFlow starts. `datasets`, `experiment`
(`train_and_evaluate`), `callbacks` and `restore` (`restore_flow`) train and read a run.
Nothing is imported here; import the modules themselves
(`from tfp_flows.run.restore import restore_flow`).
"""
