"""CLMS Updates updating itself: agent releases, and a hand-off that cannot strand a school.

- ``checking``: the agent product's own signed index and manifests
  (``check_agent_releases``, ``offered``);
- ``handoff``: the first half of an agent update run, in the worker, and the
  recovery of a run a (re)started agent finds active;
- ``driver``: the second half, in a container of its own;
- ``project``: the agent's own compose project; ``database``: the verified
  copy of the agent's database a failed update is rolled back to.

The actions that start an agent update are ``updates.actions.update_agent``
and ``plan_update_agent``; see ``docs/updating.md`` ("Updating the agent").
"""
