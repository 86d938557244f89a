"""`cpl import`: existing Step Functions state machines and Argo templates as specs.

`asl` and `argo` turn an engine document into a spec body and a fidelity report
(`fidelity`); `bindings` adds the activities it calls to the environment file; `service`
names, validates and writes the spec; `live` reads a state machine from a target; `adopt`
takes over what `cpl drift` reports as unmanaged.
"""
