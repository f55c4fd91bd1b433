"""A release is a Compose project: rendered, checked and applied with Compose itself.

- ``project``: the school's project folder (the vendor's ``compose.yaml``, the
  school's ``.env`` and ``compose.override.yaml``), rendering and snapshots;
- ``policy``: what a release's project may do on the school's server;
- ``stack``: ``up``, the migration as ``compose run``, drift and volumes;
- ``values``: the values a release asks the school for;
- ``targets``: what a run writes into the project (staged, checked, installed).

The Compose CLI itself (v2 plugin or v1) is ``clms_updates.composecli``: the
vendor server validates release projects with it too.
"""
