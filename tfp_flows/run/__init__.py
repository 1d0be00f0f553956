"""The run behind `train.py`: the config schema, the workdir, the experiment, restoring a run.

Nothing is imported here, so `train.py` can load `tfp_flows.run.cli` and check its flags and
workdir before TensorFlow starts; import the modules themselves
(`from tfp_flows.run.restore import restore_flow`).
"""
