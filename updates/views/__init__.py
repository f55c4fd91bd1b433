"""The school pages of the updates app: the update manager and the runs.

Thin views: a form parses what the admin asked, an action in
``updates.actions`` does it, and a refusal is shown on the page. The pages of
critical deadlines and offline bundles live with their features
(``updates.enforcement.views``, ``updates.offline.views``).
"""
