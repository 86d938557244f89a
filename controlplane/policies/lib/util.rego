# METADATA
# title: cpl library utilities
# description: JSON pointers (RFC 6901) and human-readable durations and sizes for messages.
package cpl.lib.util

import rego.v1

# escape(token): one RFC 6901 reference token ("~" -> "~0", "/" -> "~1").
escape(token) := s if {
	is_string(token)
	s := replace(replace(token, "~", "~0"), "/", "~1")
}

escape(token) := format_int(token, 10) if is_number(token)

# pointer(path): the JSON pointer of a path array, e.g. ["spec", "steps", 2] -> "/spec/steps/2";
# the empty array is the root pointer "".
pointer(path) := "" if count(path) == 0

pointer(path) := concat("", [sprintf("/%s", [escape(t)]) | some t in path]) if count(path) > 0

# has(obj, path): the object path (array of keys) exists in obj and is not null.
has(obj, path) if object.get(obj, path, null) != null

# nearest(obj, path): pointer of the deepest prefix of `path` (object keys
# only) that exists in obj -- used to report a missing field at its parent.
nearest(obj, path) := pointer(array.slice(path, 0, n)) if {
	n := max([k |
		some k in numbers.range(0, count(path))
		_exists_prefix(obj, array.slice(path, 0, k))
	])
}

_exists_prefix(_, prefix) if count(prefix) == 0

_exists_prefix(obj, prefix) if {
	count(prefix) > 0
	has(obj, prefix)
}

# nonempty(x): x is set to something other than "", [], {}.
nonempty(x) if {
	x != null
	x != ""
	x != []
	x != {}
}

# duration(seconds): compact text such as "30d", "1h30m", "90s", "500ms".
duration(s) := "0s" if s == 0

duration(s) := sprintf("%vms", [round(s * 1000)]) if {
	s > 0
	s < 1
}

duration(s) := concat("", parts) if {
	s >= 1
	whole := floor(s)
	d := floor(whole / 86400)
	h := floor((whole % 86400) / 3600)
	m := floor((whole % 3600) / 60)
	sec := whole % 60
	ms := round((s - whole) * 1000)
	parts := [p |
		some unit in [[d, "d"], [h, "h"], [m, "m"], [sec, "s"], [ms, "ms"]]
		unit[0] > 0
		p := sprintf("%d%s", [unit[0], unit[1]])
	]
}

# size(bytes): "256KiB", "1MiB", or "1000 bytes".
size(b) := sprintf("%dGiB", [b / 1073741824]) if {
	b > 0
	b % 1073741824 == 0
}

size(b) := sprintf("%dMiB", [b / 1048576]) if {
	b > 0
	b % 1048576 == 0
	b % 1073741824 != 0
}

size(b) := sprintf("%dKiB", [b / 1024]) if {
	b > 0
	b % 1024 == 0
	b % 1048576 != 0
}

size(b) := sprintf("%d bytes", [b]) if {
	b % 1024 != 0
}

size(0) := "0 bytes"
