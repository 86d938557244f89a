# METADATA
# title: cpl input context helpers
# description: Facts about the (workflow, environment, target) under evaluation.
package cpl.lib.context

import rego.v1

workflow := object.get(input, "workflow", {})

metadata := object.get(workflow, "metadata", {})

spec := object.get(workflow, "spec", {})

name := object.get(metadata, "name", "")

tier := object.get(input, ["environment", "tier"], "")

production if tier == "production"

engine := object.get(input, ["target", "engine"], "")

target_name := object.get(input, ["target", "name"], "")

classification := object.get(metadata, "classification", "internal")

compliance := object.get(metadata, "compliance", [])

sensitive_classes := {"pii", "phi", "pci"}

# sensitive: classification pii, phi or pci
sensitive if classification in sensitive_classes

# rendered: the engine artifact, {} when absent
default rendered := {}

rendered := input.rendered if is_object(input.rendered)
