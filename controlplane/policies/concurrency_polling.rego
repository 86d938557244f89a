# METADATA
# title: Bounded fan-out and no busy polling
# description: |
#   Every `map` step sets maxConcurrency (an unbounded fan-out overloads
#   downstream systems and engine quotas), and a loop of steps does not poll
#   faster than config.minPollInterval (default 5s).
#
#   Loop detection (a sound approximation, per scope of steps): a `wait`
#   with a `duration` below minPollInterval, or an `approval` with a
#   `timeout` below minPollInterval, is reported when it can reach itself
#   again through next / choice rules and default / catch / onTimeout
#   transitions without passing another pause that is itself slow enough
#   (a wait with duration >= minPollInterval or with `until`, an approval
#   with timeout >= minPollInterval or without timeout). Task durations are
#   not counted (unknown statically); a loop made only of several fast
#   pauses is reported even if their sum reaches the minimum. Loops that
#   re-enter a parallel/map from outside are not followed into the nested
#   scope; DAG workflows cannot loop.
# custom:
#   id: CPL-P019
#   severity: medium
#   controls:
#     - "SRE resilience: unbounded fan-out and load amplification"
#     - "SRE resilience: busy polling / engine history and state-transition cost"
#     - "SOC 2 A1.1 availability: capacity management"
package cpl.rules.concurrency_polling

import rego.v1

import data.cpl.lib.config.config
import data.cpl.lib.steps
import data.cpl.lib.util

deny contains v if {
	some ptr, step in steps.of_type("map")
	not step.maxConcurrency
	v := {
		"msg": sprintf("map %s sets no maxConcurrency: it fans out over all items of %v at once", [steps.label(step), object.get(step, "items", "its items")]),
		"path": ptr,
	}
}

deny contains v if {
	some ptr, step in steps.all_steps
	[field, period] := _fast(step)
	g := _paced_graph[steps.scope[ptr]]
	step.name in graph.reachable(g, g[step.name])
	v := {
		"msg": sprintf("%s loops back to itself and pauses only %s (%s), faster than the minimum poll interval %s", [
			steps.label(step), util.duration(period), field, util.duration(config.minPollInterval),
		]),
		"path": concat("", [ptr, "/", field]),
	}
}

# _fast(step) := [field, seconds] for a pause shorter than minPollInterval.
_fast(step) := ["duration", step.duration] if {
	step.type == "wait"
	is_number(step.duration)
	step.duration < config.minPollInterval
}

_fast(step) := ["timeout", step.timeout] if {
	step.type == "approval"
	is_number(step.timeout)
	step.timeout < config.minPollInterval
}

# _paced_graph[scope] := the transition graph of a scope without the steps
# that pace a loop enough on their own (computed only for scopes holding a
# fast pause).
_paced_graph[sc] := {name: succ |
	some name, s in steps.graph(sc)
	not name in slow
	succ := {n | some n in s; not n in slow}
} if {
	some ptr, step in steps.all_steps
	_fast(step)
	sc := steps.scope[ptr]
	slow := {s.name | some p in steps.scopes[sc]; s := steps.all_steps[p]; _slow(s)}
}

_slow(s) if {
	s.type == "wait"
	not _fast(s)
}

_slow(s) if {
	s.type == "approval"
	not _fast(s)
}
