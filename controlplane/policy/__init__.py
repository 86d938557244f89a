"""Policy gates: OPA engines (embedded, remote), input documents, change detection and the
decision. The seams: `build_inputs(...)` → `evaluate(inputs, environment, waivers, today)`
→ `Decision`."""
