# METADATA
# title: Access is declared; admin access is just-in-time
# description: |
#   On the production tier a workflow declares access.start (who may start
#   runs). On every tier, access.admin requires jit with a maxDuration of at
#   most config.maxJit (default 4h): standing administrative access to runs
#   (pause, skip, terminate) is not allowed.
# custom:
#   id: CPL-P016
#   severity: high
#   controls:
#     - "SOX ITGC logical access: least privilege and segregation of duties"
#     - "HIPAA §164.312(a)(1) access control"
#     - "PCI DSS 7.2 access is assigned on least privilege"
#     - "SOC 2 CC6.1 / CC6.3 logical access, privileged access management"
package cpl.rules.access_control

import rego.v1

import data.cpl.lib.config.config
import data.cpl.lib.context
import data.cpl.lib.util

deny contains v if {
	context.production
	not util.nonempty(object.get(context.spec, ["access", "start"], {}))
	v := {
		"msg": sprintf("production workflow '%s' declares no access.start: anyone with engine access could start runs", [context.name]),
		"path": util.nearest(input.workflow, ["spec", "access", "start"]),
	}
}

deny contains v if {
	admin := context.spec.access.admin
	not admin.jit
	v := {
		"msg": sprintf("workflow '%s' grants standing access.admin: add jit with maxDuration at most %s", [context.name, util.duration(config.maxJit)]),
		"path": "/spec/access/admin",
	}
}

deny contains v if {
	jit := context.spec.access.admin.jit
	not jit.maxDuration
	v := {
		"msg": sprintf("workflow '%s' access.admin.jit sets no maxDuration (at most %s)", [context.name, util.duration(config.maxJit)]),
		"path": "/spec/access/admin/jit",
	}
}

deny contains v if {
	d := context.spec.access.admin.jit.maxDuration
	d > config.maxJit
	v := {
		"msg": sprintf("workflow '%s' grants just-in-time admin access for %s, more than the maximum %s", [context.name, util.duration(d), util.duration(config.maxJit)]),
		"path": "/spec/access/admin/jit/maxDuration",
	}
}
