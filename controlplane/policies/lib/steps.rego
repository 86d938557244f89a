# METADATA
# title: cpl workflow step helpers
# description: |
#   Enumerates the steps of input.workflow at any depth (spec.steps, the
#   steps of parallel branches, the per-item steps of maps, nested to any
#   level) with their JSON pointers, plus the transition graph of each scope.
#   Nesting up to 8 levels is enumerated directly (cheap); deeper workflows
#   fall back to a walk() over spec.steps, so every depth is covered.
package cpl.lib.steps

import rego.v1

import data.cpl.lib.util

spec := object.get(input, ["workflow", "spec"], {})

# all_steps[ptr] := step -- every step at any depth, keyed by its JSON pointer
# into input.workflow, e.g. "/spec/steps/1/branches/0/steps/2". Computed once per
# evaluation and shared by every rule (see "enumeration" below).
all_steps := _shallow if not _deep

all_steps := {util.pointer(array.concat(["spec", "steps"], rel)): step | some rel, step in _walk_steps} if _deep

# paths[ptr] := path array of the step, e.g. ["spec", "steps", 1].
paths[ptr] := [_token(t) | some t in array.slice(split(ptr, "/"), 1, 100)] if some ptr, _ in all_steps

_token(t) := to_number(t) if regex.match(`^[0-9]+$`, t)

_token(t) := t if not regex.match(`^[0-9]+$`, t)

# tasks[ptr] := step -- every `task` step at any depth.
tasks[ptr] := step if {
	some ptr, step in all_steps
	step.type == "task"
}

# of_type(t): {ptr: step} of every step of type t.
of_type(t) := {ptr: step | some ptr, step in all_steps; step.type == t}

# scope[ptr] := pointer of the array that holds the step (its sibling scope),
# e.g. "/spec/steps" or "/spec/steps/1/branches/0/steps": the step pointer
# without its last token.
scope[ptr] := substring(ptr, 0, max(indexof_n(ptr, "/"))) if some ptr, _ in all_steps

# scopes[scope_ptr] := {ptrs of the steps in that scope}
scopes[sc] contains ptr if some ptr, sc in scope

# named(scope_ptr, name): {ptrs} of the steps called `name` in that scope
# (a set: duplicate names are invalid, but must not crash rules).
named(sc, name) := {ptr | some ptr in scopes[sc]; all_steps[ptr].name == name}

# label(step): "step 'name'" for messages.
label(step) := sprintf("step '%s'", [step.name])

# retries(step): a task retry that actually retries (maxAttempts > 1; a
# retry object without maxAttempts counts as retrying).
retries(step) if {
	is_object(step.retry)
	object.get(step.retry, "maxAttempts", 2) > 1
}

# compensation_tasks[ptr] := step -- task steps named by some task's
# `compensation` in the same scope.
compensation_tasks[ptr] := step if {
	some tptr, t in tasks
	is_string(t.compensation)
	some ptr in named(scope[tptr], t.compensation)
	step := tasks[ptr]
}

# successors(step): names of steps a state-machine step can move to
# (next, choice rules/default, catch, approval onTimeout).
successors(step) := {n |
	some n in ((({x | x := step.next} | {x | x := step.rules[_].next}) | {x | x := step["default"]}) | {x | x := step.catch[_].next}) | {x | x := step.onTimeout}
	is_string(n)
}

# graphs[scope_ptr] := {name: {successor names}} of the steps in one scope,
# suitable for graph.reachable (computed once per scope and evaluation).
graphs[sc] := {name: succ |
	some name in {all_steps[p].name | some p in ptrs}
	succ := union({successors(all_steps[p]) | some p in ptrs; all_steps[p].name == name})
} if some sc, ptrs in scopes

graph(sc) := graphs[sc]

# owner(ptr): pointer of the innermost step containing the node at ptr.
owner(node_ptr) := sptr if {
	prefix := concat("", [node_ptr, "/"])
	cands := [[count(sp), sp] |
		some sp, _ in all_steps
		startswith(prefix, concat("", [sp, "/"]))
	]
	sptr := max(cands)[1]
}

# --- enumeration --------------------------------------------------------
# Each level is an object {pointer: step}, built from the container steps
# (those with `steps` or `branches`) of the level above; objects hash only
# their string keys. Pointer tokens are fixed keys and array indexes: no
# RFC 6901 escaping.

_level(above) := object.union(
	{concat("", [ptr, "/steps/", format_int(k, 10)]): c |
		some ptr, step in above
		some k, c in step.steps
		is_object(c)
	},
	{concat("", [ptr, "/branches/", format_int(j, 10), "/steps/", format_int(k, 10)]): c |
		some ptr, step in above
		some j, b in step.branches
		some k, c in b.steps
		is_object(c)
	},
)

_l0 := {concat("", ["/spec/steps/", format_int(i, 10)]): s |
	some i, s in object.get(spec, "steps", [])
	is_object(s)
}

_l1 := _level(_l0)

_l2 := _level(_l1)

_l3 := _level(_l2)

_l4 := _level(_l3)

_l5 := _level(_l4)

_l6 := _level(_l5)

_l7 := _level(_l6)

_deep if count(_level(_l7)) > 0

_shallow := object.union_n([_l0, _l1, _l2, _l3, _l4, _l5, _l6, _l7])

# Walk fallback: paths relative to spec.steps shaped i ( (branches j)? steps k )*
_walk_steps[rel] := step if {
	walk(object.get(spec, "steps", []), [rel, step])
	count(rel) > 0
	is_object(step)
	regex.match(`^#(/(branches/#/)?steps/#)*$`, concat("/", [_shape(t) | some t in rel]))
}

_shape(t) := "#" if is_number(t)

_shape(t) := t if is_string(t)
