"""Names vulture (dead-code check, .ci/run) cannot see used: hooks that TFP, Keras, TF's
tracking and the import system call by name. Regenerate with
`vulture tfp_flows train.py configs tests examples --make-whitelist` after checking each new
name really is such a hook."""

# ruff: noqa
pytest_collection_modifyitems  # tests/conftest.py
pytest_configure  # tests/conftest.py
_.future_option  # tests/run/test_schema.py
exc_info  # tests/scripts/processes.py
__getattr__  # tfp_flows/__init__.py
__dir__  # tfp_flows/__init__.py
_.find_spec  # tfp_flows/__init__.py
_.create_module  # tfp_flows/__init__.py
_.exec_module  # tfp_flows/__init__.py
_._saved_structure  # tfp_flows/bijectors/base.py
_._parameter_properties  # tfp_flows/bijectors/base.py
_._cached_forward  # tfp_flows/bijectors/base.py
_._cached_inverse  # tfp_flows/bijectors/base.py
_._forward  # tfp_flows/bijectors/base.py
_._inverse  # tfp_flows/bijectors/base.py
_._forward_log_det_jacobian  # tfp_flows/bijectors/base.py
_._inverse_log_det_jacobian  # tfp_flows/bijectors/base.py
_._forward_event_shape  # tfp_flows/bijectors/chain.py
_._inverse_event_shape  # tfp_flows/bijectors/chain.py
_._forward_event_shape_tensor  # tfp_flows/bijectors/chain.py
_._inverse_event_shape_tensor  # tfp_flows/bijectors/chain.py
_._forward_event_shape  # tfp_flows/bijectors/context.py
_._inverse_event_shape  # tfp_flows/bijectors/context.py
_._forward_event_shape_tensor  # tfp_flows/bijectors/context.py
_._inverse_event_shape_tensor  # tfp_flows/bijectors/context.py
_._forward_event_shape  # tfp_flows/bijectors/squeeze.py
_._inverse_event_shape  # tfp_flows/bijectors/squeeze.py
_._forward_event_shape_tensor  # tfp_flows/bijectors/squeeze.py
_._inverse_event_shape_tensor  # tfp_flows/bijectors/squeeze.py
_._saved_structure  # tfp_flows/dequantization/variational.py
_.__signature__  # tfp_flows/export.py
_.on_train_begin  # tfp_flows/run/callbacks.py
_.test_step  # tfp_flows/training/trainer.py
_.predict_step  # tfp_flows/training/trainer.py
async_safe  # tfp_flows/training/workarounds.py
