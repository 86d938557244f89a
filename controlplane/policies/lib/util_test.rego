package cpl.lib.util_test

import rego.v1

import data.cpl.lib.config
import data.cpl.lib.util

test_pointer_escapes_rfc6901 if {
	util.pointer(["spec", "steps", 2, "parameters", "a/b", "c~d"]) == "/spec/steps/2/parameters/a~1b/c~0d"
	util.pointer([]) == ""
}

test_nearest_existing_parent if {
	util.nearest({"spec": {"security": {}}}, ["spec", "security", "encryption", "key"]) == "/spec/security"
	util.nearest({}, ["spec", "timeout"]) == ""
}

test_duration_and_size if {
	util.duration(5400) == "1h30m"
	util.duration(0.5) == "500ms"
	util.duration(31536000) == "365d"
	util.size(262144) == "256KiB"
	util.size(2097152) == "2MiB"
	util.size(1000) == "1000 bytes"
}

test_config_merges_user_values_recursively if {
	c := config.config with data.cpl.config as {"maxAttempts": 5, "payloadLimits": {"argo": 1}}
	c.maxAttempts == 5
	c.payloadLimits == {"stepfunctions": 262144, "temporal": 2097152, "argo": 1}
	c.maxRetention == 31536000
}
