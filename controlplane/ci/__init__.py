"""Helpers for the GitHub workflows of ci/github/ (and the action of action.yml): the body of
the one comment or issue a workflow keeps up to date, found again by its hidden marker."""
