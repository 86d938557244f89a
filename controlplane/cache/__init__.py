"""The content-addressed cache of what `check` and `plan` derive from a control repo.

`store` keeps entries on disk (`.cpl/cache/`), `keys` names what an entry depends on,
`codec` turns artifacts and findings into JSON and back, and `stages` is the cached pass
over an environment that `controlplane.pipeline` runs. See docs/cache.md.
"""
